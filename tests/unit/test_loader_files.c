/* The loader against odd files in a plugin directory (issue 12, defect 8): a FIFO named
 * like a plugin, a stray libtool archive (.la) beside a plugin, a dangling symbolic link.
 * Each test builds its own directories under a fresh mkdtemp() directory, copying or
 * linking the fake plugins of tests/loader, and removes them again. The catalogue
 * (spc_transport_list, what speadcast-info prints) must agree with what a load does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "speadcast/speadcast.h"

#define FAKES SPC_TEST_BINARY_DIR "/tests/loader/plugins"
#define FAKES2 SPC_TEST_BINARY_DIR "/tests/loader/plugins2"

static char tmp[256];

static void make_tmp(void)
{
    unsetenv("SPEADCAST_PLUGIN_PATH");
    snprintf(tmp, sizeof tmp, "/tmp/spc-loader-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

/* Removes the files the tests put in tmp (one level, plus sub directories a, b). */
static void remove_tmp(void)
{
    static const char *const subs[] = {"a", "b", ""};
    static const char *const names[] = {"speadcast-dup.so", "speadcast-dup.la", "speadcast-optdemo.so",
                                        "speadcast-optdemo.la", "speadcast-fifo.so", "speadcast-dir.so"};
    for (size_t s = 0; s < 3; s++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s%s%s", tmp, *subs[s] ? "/" : "", subs[s]);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char f[400];
            snprintf(f, sizeof f, "%s/%s", dir, names[i]);
            if (unlink(f) != 0 && errno == EISDIR)
                rmdir(f);
            rmdir(f);
        }
        rmdir(dir);
    }
}

TestSuite(loader_files, .init = make_tmp, .fini = remove_tmp);

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "copy %s -> %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static void sub_dir(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", tmp, name);
    cr_assert_eq(mkdir(out, 0700), 0, "%s: %s", out, strerror(errno));
}

/* Loads transport name with plugin_path dirs (JSON array text); rc and err out. */
static int load(const char *name, const char *dirs_json, char *err, size_t errlen)
{
    char doc[1024];
    snprintf(doc, sizeof doc, "{\"transport\": \"%s\", \"plugin_path\": %s}", name, dirs_json);
    struct spc_config *cfg = NULL;
    int rc = spc_config_parse(&cfg, doc, err, errlen);
    spc_config_destroy(cfg);
    return rc;
}

/* ------------------------------------------------------------ FIFO */

struct load_job {
    char name[32];
    char dirs[512];
    const char *list_dir;             /* set: list this directory instead of loading */
    const char *fifo;                 /* opened for writing to release a blocked loader */
    struct spc_transport_info *list;  /* the listing, n entries */
    size_t n;
    char err[4096];
    int rc;
    int done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void *load_main(void *arg)
{
    struct load_job *j = arg;
    int rc;
    if (j->list_dir) {
        const char *pp[] = {j->list_dir, NULL};
        rc = spc_transport_list(pp, &j->list, &j->n);
    } else {
        rc = load(j->name, j->dirs, j->err, sizeof j->err);
    }
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->done = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* Runs a load (or listing) on a thread and waits at most 5 s for it. A loader blocked in
 * opening the FIFO is released by opening its other end, so the test fails instead of
 * hanging. */
static int load_bounded(struct load_job *j)
{
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, load_main, j), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&j->lock);
    while (!j->done && pthread_cond_timedwait(&j->cond, &j->lock, &until) == 0)
        ;
    int done = j->done;
    pthread_mutex_unlock(&j->lock);
    /* Each open the loader makes of the FIFO blocks again: release up to 50 of them. */
    for (int tries = 0; !done && j->fifo && tries < 50; tries++) {
        int fd = open(j->fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0)
            close(fd);
        nanosleep(&(struct timespec){0, 100000000}, NULL);
        pthread_mutex_lock(&j->lock);
        int finished = j->done;
        pthread_mutex_unlock(&j->lock);
        if (finished)
            break;
    }
    pthread_join(th, NULL);
    cr_assert(done, "the loader blocked for 5 s on %s", j->list_dir ? j->list_dir : j->dirs);
    return j->rc;
}

Test(loader_files, fifo_is_refused_without_opening_it)
{
    char file[400];
    snprintf(file, sizeof file, "%s/speadcast-fifo.so", tmp);
    cr_assert_eq(mkfifo(file, 0600), 0);
    struct load_job j = {.name = "fifo", .fifo = file};
    snprintf(j.dirs, sizeof j.dirs, "[\"%s\"]", tmp);
    int rc = load_bounded(&j);
    cr_expect_eq(rc, -SPC_EPLUGIN, "rc %d: %s", rc, j.err);
    cr_expect(strstr(j.err, file) != NULL, "the error does not name the file: %s", j.err);
    cr_expect(strstr(j.err, "not a regular file") != NULL, "%s", j.err);

    /* The loader's lock was not left held: another load still works. */
    struct load_job k = {.name = "optdemo"};
    snprintf(k.dirs, sizeof k.dirs, "[\"" FAKES "\"]");
    cr_expect_eq(load_bounded(&k), -SPC_ECONFIG, "optdemo without endpoints: %s", k.err);
}

Test(loader_files, directory_named_like_a_plugin)
{
    char file[400], err[4096];
    snprintf(file, sizeof file, "%s/speadcast-dir.so", tmp);
    cr_assert_eq(mkdir(file, 0700), 0);
    char dirs[400];
    snprintf(dirs, sizeof dirs, "[\"%s\"]", tmp);
    int rc = load("dir", dirs, err, sizeof err);
    cr_expect_eq(rc, -SPC_EPLUGIN);
    cr_expect(strstr(err, file) && strstr(err, "not a regular file"), "%s", err);
}

Test(loader_files, catalogue_lists_fifo_as_failed)
{
    char file[400];
    snprintf(file, sizeof file, "%s/speadcast-fifo.so", tmp);
    cr_assert_eq(mkfifo(file, 0600), 0);
    struct load_job j = {.list_dir = tmp, .fifo = file};
    cr_assert_eq(load_bounded(&j), 0);
    struct spc_transport_info *list = j.list;
    size_t n = j.n;
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i].name, "fifo")) {
            seen = 1;
            cr_expect_eq(list[i].status, -SPC_EPLUGIN);
            cr_expect(list[i].message && strstr(list[i].message, "not a regular file"), "%s",
                      list[i].message ? list[i].message : "(null)");
        }
    cr_expect(seen);
    spc_transport_list_free(list, n);
}

/* ------------------------------------------------------------ stray .la */

Test(loader_files, garbage_la_beside_plugin_is_ignored)
{
    char so[400], la[400], err[4096], dirs[400];
    snprintf(so, sizeof so, "%s/speadcast-dup.so", tmp);
    snprintf(la, sizeof la, "%s/speadcast-dup.la", tmp);
    copy_file(FAKES "/speadcast-dup.so", so);
    write_text(la, "this is not a libtool archive\n\x01\x02");
    snprintf(dirs, sizeof dirs, "[\"%s\"]", tmp);
    int rc = load("dup", dirs, err, sizeof err);
    cr_expect_eq(rc, 0, "a stray .la broke the load: %s", err);
}

/* A well-formed .la naming another library: libltdl would load that one instead. */
Test(loader_files, la_naming_another_file_is_not_followed)
{
    char so[400], la[400], other[400], err[4096], dirs[400], text[1024];
    snprintf(so, sizeof so, "%s/speadcast-dup.so", tmp);
    snprintf(la, sizeof la, "%s/speadcast-dup.la", tmp);
    snprintf(other, sizeof other, "%s/speadcast-optdemo.so", tmp);
    copy_file(FAKES "/speadcast-dup.so", so);
    copy_file(FAKES "/speadcast-optdemo.so", other);
    snprintf(text, sizeof text,
             "# speadcast-dup.la - a libtool library file\n"
             "dlname='speadcast-optdemo.so'\n"
             "library_names='speadcast-optdemo.so'\n"
             "old_library=''\n"
             "dependency_libs=''\n"
             "installed=no\n"
             "shouldnotlink=yes\n"
             "libdir='%s'\n", tmp);
    write_text(la, text);
    snprintf(dirs, sizeof dirs, "[\"%s\"]", tmp);
    int rc = load("dup", dirs, err, sizeof err);
    cr_expect_eq(rc, 0, "loaded the file the .la names instead of %s: %s", so, err);

    const char *pp[] = {tmp, NULL};
    struct spc_transport_info *list;
    size_t n;
    cr_assert_eq(spc_transport_list(pp, &list, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i].name, "dup")) {
            cr_expect_eq(list[i].status, 0, "%s", list[i].message ? list[i].message : "");
            cr_expect(list[i].path && strstr(list[i].path, "/speadcast-dup.so"), "%s",
                      list[i].path ? list[i].path : "(null)");
        }
    spc_transport_list_free(list, n);
}

/* ------------------------------------------------------------ listing = loading */

/* For each name in the catalogue, the first entry that is not skipped decides: a load of
 * that name succeeds exactly when that entry is "ok", and later entries are shadowed. */
static void expect_catalogue_agrees(const char *const *pp, const char *dirs_json, const char *name,
                                    const char *want_path_part)
{
    struct spc_transport_info *list;
    size_t n;
    cr_assert_eq(spc_transport_list(pp, &list, &n), 0);
    const struct spc_transport_info *decides = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, name))
            continue;
        if (list[i].status == -ENOENT) {
            cr_expect(list[i].message && *list[i].message, "a skipped entry has no reason");
            continue;
        }
        if (!decides) {
            decides = &list[i];
            cr_expect_neq(list[i].status, -EEXIST, "%s listed as shadowed by: %s", list[i].path,
                          list[i].message);
        } else {
            cr_expect_eq(list[i].status, -EEXIST, "%s after the deciding entry is not shadowed", list[i].path);
        }
    }
    cr_assert_not_null(decides, "%s not listed", name);
    char err[4096];
    int rc = load(name, dirs_json, err, sizeof err);
    cr_expect_eq(rc == 0, decides->status == 0, "listing says %d (%s), loading says %d: %s", decides->status,
                 decides->path, rc, err);
    if (want_path_part)
        cr_expect(decides->path && strstr(decides->path, want_path_part), "%s", decides->path);
    spc_transport_list_free(list, n);
}

Test(loader_files, dangling_symlink_is_skipped_like_the_loader_does)
{
    char a[300], link[400], dirs[700];
    sub_dir("a", a, sizeof a);
    snprintf(link, sizeof link, "%s/speadcast-dup.so", a);
    cr_assert_eq(symlink("/nonexistent/speadcast-dup.so", link), 0);
    snprintf(dirs, sizeof dirs, "[\"%s\", \"" FAKES2 "\"]", a);
    const char *pp[] = {a, FAKES2, NULL};
    expect_catalogue_agrees(pp, dirs, "dup", "/plugins2/");

    struct spc_transport_info *list;
    size_t n;
    cr_assert_eq(spc_transport_list(pp, &list, &n), 0);
    int skipped = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i].name, "dup") && list[i].status == -ENOENT) {
            skipped = 1;
            cr_expect_str_eq(list[i].path, link);
            cr_expect(strstr(list[i].message, "dangling"), "%s", list[i].message);
        }
    cr_expect(skipped, "the dangling link is not listed as skipped");
    spc_transport_list_free(list, n);
}

Test(loader_files, symlink_to_plugin_loads_and_lists_ok)
{
    char a[300], link[400], dirs[700];
    sub_dir("a", a, sizeof a);
    snprintf(link, sizeof link, "%s/speadcast-dup.so", a);
    cr_assert_eq(symlink(FAKES2 "/speadcast-dup.so", link), 0);
    snprintf(dirs, sizeof dirs, "[\"%s\", \"" FAKES "\"]", a);
    const char *pp[] = {a, FAKES, NULL};
    expect_catalogue_agrees(pp, dirs, "dup", "/plugins2/");
}

Test(loader_files, broken_first_copy_shadows_like_the_loader)
{
    char a[300], file[400], dirs[700];
    sub_dir("a", a, sizeof a);
    snprintf(file, sizeof file, "%s/speadcast-dup.so", a);
    write_text(file, "not an ELF file");
    snprintf(dirs, sizeof dirs, "[\"%s\", \"" FAKES2 "\"]", a);
    const char *pp[] = {a, FAKES2, NULL};
    expect_catalogue_agrees(pp, dirs, "dup", a);
}

/* speadcast-info prints the same decisions: the dangling link "skipped", the working
 * copy behind it "ok" (not "FAILED" and "shadowed"). */
Test(loader_files, info_tool_listing_agrees)
{
    char a[300], link[400], cmd[1024], out[16384];
    sub_dir("a", a, sizeof a);
    snprintf(link, sizeof link, "%s/speadcast-dup.so", a);
    cr_assert_eq(symlink("/nonexistent/speadcast-dup.so", link), 0);
    snprintf(cmd, sizeof cmd, SPC_TEST_BINARY_DIR "/tools/speadcast-info -p %s -p " FAKES2 " 2>&1", a);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    cr_expect_eq(pclose(p), 0, "%s", out);
    const char *dup = strstr(out, "  dup ");
    cr_assert_not_null(dup, "%s", out);
    char line[128];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(dup, "\n"), dup);
    cr_expect(strstr(line, "skipped") != NULL, "first dup line: %s\n%s", line, out);
    const char *second = strstr(dup + 1, "  dup ");
    cr_assert_not_null(second, "%s", out);
    snprintf(line, sizeof line, "%.*s", (int)strcspn(second, "\n"), second);
    cr_expect(strstr(line, " ok ") != NULL, "second dup line: %s\n%s", line, out);
}
