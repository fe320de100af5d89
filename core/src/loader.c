/* Transport plugin loader: name -> module file -> checked descriptor -> full ops table.
 *
 * Invariants:
 * - Every lt_dl* call, the registry and each entry-point call happen under loader_lock
 *   (libltdl is not thread-safe).
 * - A plugin in the registry passed every check and is resident: its module is never
 *   closed, so descriptors and ops stay valid for the life of the process.
 * - Registry entries are keyed by canonical file path; built-ins have no path.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ltdl.h>

#include "log_internal.h"
#include "transport_internal.h"

#ifndef SPC_PLUGIN_DIR
#error "SPC_PLUGIN_DIR must be defined by the build"
#endif

#define MODULE_PREFIX "speadcast-"
#define MODULE_SUFFIX ".so"
#define MAX_NAME_LEN 64
/* ABI majors probed when spc_transport_entry_v1 is missing, to say what a plugin speaks. */
#define MAX_PROBED_ABI 16

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static int ltdl_state; /* 0 not yet initialised, 1 ready, -1 lt_dlinit failed */
static struct spci_plugin *registry;
static int builtins_registered;

/* ------------------------------------------------------------ growable text */

struct text {
    char *p;
    size_t len, cap;
    int oom;
};

static void text_vadd(struct text *t, const char *fmt, va_list ap)
{
    if (t->oom)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 128;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    t->len += (size_t)n;
}

SPCI_PRINTF(2, 3) static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    text_vadd(t, fmt, ap);
    va_end(ap);
}

static const char *text_str(const struct text *t)
{
    return t->oom ? "out of memory" : t->p ? t->p : "";
}

static void put_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) {
        strncpy(err, msg, errlen - 1);
        err[errlen - 1] = '\0';
    }
}

/* ------------------------------------------------------------ stubs */

static int stub_flush(struct spc_transport *t) { (void)t; return -SPC_ENOTSUP; }
static int stub_poll(struct spc_transport *t) { (void)t; return -SPC_ENOTSUP; }
static int stub_get_fd(struct spc_transport *t) { (void)t; return -SPC_ENOTSUP; }
static int stub_register(struct spc_transport *t, void *a, size_t l, void **h)
{
    (void)t, (void)a, (void)l;
    if (h)
        *h = NULL;
    return -SPC_ENOTSUP;
}
static int stub_deregister(struct spc_transport *t, void *h) { (void)t, (void)h; return -SPC_ENOTSUP; }

/* Reads op field only when the plugin's ops struct covers it (the ABI rule). */
#define TAKE_OP(dst, src, field, stub)                                                 \
    ((dst)->field = (SPC_HAS_FIELD(src, struct spc_transport_ops, field) && (src)->field) \
                        ? (src)->field                                                 \
                        : (stub))

/* ------------------------------------------------------------ descriptor checks */

int spci_transport_name_check(const char *name)
{
    size_t n = 0;
    if (!name)
        return -EINVAL;
    for (const char *p = name; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return -EINVAL;
    return n == 0 || n > MAX_NAME_LEN ? -EINVAL : 0;
}

static const size_t min_desc_size =
    offsetof(struct spc_transport_descriptor, ops) + sizeof(void *);
static const size_t min_ops_size = offsetof(struct spc_transport_ops, send) + sizeof(void *);

/* Checks a descriptor and builds its plugin record. expect_name is the name the module
 * file promises (NULL for built-ins). Reason text goes to *why. */
static int make_plugin(const struct spc_transport_descriptor *d, const char *expect_name,
                       const char *path, struct spci_plugin **out, struct text *why)
{
    if (!d) {
        text_add(why, "entry point returned no descriptor");
        return -SPC_EPLUGIN;
    }
    if (d->struct_size < min_desc_size) {
        text_add(why, "descriptor struct_size %u is below the ABI %d minimum of %zu",
                 (unsigned)d->struct_size, SPC_TRANSPORT_ABI_MAJOR, min_desc_size);
        return -SPC_EPLUGIN;
    }
    if (d->abi_major != SPC_TRANSPORT_ABI_MAJOR) {
        text_add(why, "descriptor declares ABI %u, this core speaks ABI %d",
                 (unsigned)d->abi_major, SPC_TRANSPORT_ABI_MAJOR);
        return -SPC_EPLUGIN;
    }
    if (spci_transport_name_check(d->name) < 0) {
        text_add(why, "descriptor name is missing or not [A-Za-z0-9_-]{1,%d}", MAX_NAME_LEN);
        return -SPC_EPLUGIN;
    }
    if (expect_name && strcmp(expect_name, d->name) != 0) {
        text_add(why, "declares transport \"%s\" but the file is named for \"%s\"", d->name,
                 expect_name);
        return -SPC_EPLUGIN;
    }
    if (!d->version) {
        text_add(why, "descriptor has no version");
        return -SPC_EPLUGIN;
    }
    if (d->object_size < sizeof(struct spc_transport)) {
        text_add(why, "object_size %zu is smaller than struct spc_transport (%zu)",
                 d->object_size, sizeof(struct spc_transport));
        return -SPC_EPLUGIN;
    }
    const struct spc_transport_ops *ops = d->ops;
    if (!ops) {
        text_add(why, "descriptor has no ops table");
        return -SPC_EPLUGIN;
    }
    if (ops->struct_size < min_ops_size) {
        text_add(why, "ops struct_size %u is below the ABI %d minimum of %zu",
                 (unsigned)ops->struct_size, SPC_TRANSPORT_ABI_MAJOR, min_ops_size);
        return -SPC_EPLUGIN;
    }
    const char *missing = !ops->open ? "open" : !ops->close ? "close" : !ops->send ? "send" : NULL;
    if (missing) {
        text_add(why, "mandatory op %s is NULL", missing);
        return -SPC_EPLUGIN;
    }
    if ((d->caps & SPC_TRANSPORT_CAP_ASYNC) &&
        (!SPC_HAS_FIELD(ops, struct spc_transport_ops, poll) || !ops->flush || !ops->poll)) {
        text_add(why, "declares SPC_TRANSPORT_CAP_ASYNC but lacks the flush or poll op");
        return -SPC_EPLUGIN;
    }
    char terr[256];
    if (spci_option_table_check(d, terr, sizeof terr) < 0) {
        text_add(why, "bad option table: %s", terr);
        return -SPC_EPLUGIN;
    }

    struct spci_plugin *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->desc = d;
    p->name = strdup(d->name);
    p->path = path ? strdup(path) : NULL;
    if (!p->name || (path && !p->path)) {
        free(p->name);
        free(p->path);
        free(p);
        return -ENOMEM;
    }
    p->option_stride = d->n_options ? d->options[0].struct_size : 0;
    p->ops.struct_size = sizeof(p->ops);
    p->ops.open = ops->open;
    p->ops.close = ops->close;
    p->ops.send = ops->send;
    TAKE_OP(&p->ops, ops, flush, stub_flush);
    TAKE_OP(&p->ops, ops, poll, stub_poll);
    TAKE_OP(&p->ops, ops, get_fd, stub_get_fd);
    TAKE_OP(&p->ops, ops, register_memory, stub_register);
    TAKE_OP(&p->ops, ops, deregister_memory, stub_deregister);
    *out = p;
    return 0;
}

/* Caller holds loader_lock. */
static int register_builtins(void)
{
    static const struct spc_transport_descriptor *(*const builtins[])(void) = {spci_bytes_entry};
    if (builtins_registered)
        return 0;
    struct spci_plugin **tail = &registry;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        struct text why = {0};
        struct spci_plugin *p;
        int rc = make_plugin(builtins[i](), NULL, NULL, &p, &why);
        if (rc < 0) {
            /* A broken built-in is a core bug; report it rather than abort. */
            spci_log(SPC_LOG_ERROR, "built-in transport %zu rejected: %s", i, text_str(&why));
            free(why.p);
            return rc;
        }
        p->next = *tail;
        *tail = p;
        tail = &p->next;
    }
    builtins_registered = 1;
    return 0;
}

static struct spci_plugin *find_builtin(const char *name)
{
    for (struct spci_plugin *p = registry; p; p = p->next)
        if (!p->path && !strcmp(p->name, name))
            return p;
    return NULL;
}

static struct spci_plugin *find_resident(const char *canon)
{
    for (struct spci_plugin *p = registry; p; p = p->next)
        if (p->path && !strcmp(p->path, canon))
            return p;
    return NULL;
}

/* ------------------------------------------------------------ search path */

static int strv_push(char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i], s))
            return 0;
    char **nv = realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -ENOMEM;
    nv[++*n] = NULL;
    return 0;
}

void spc_strv_free(char **strv)
{
    if (!strv)
        return;
    for (char **p = strv; *p; p++)
        free(*p);
    free(strv);
}

/* Directory beside the loaded libspeadcast (its dir + /speadcast/plugins). */
static int beside_library(char *buf, size_t len)
{
    Dl_info info;
    if (!dladdr((void *)&spc_plugin_dirs, &info) || !info.dli_fname)
        return -ENOENT;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash)
        return -ENOENT;
    int n = snprintf(buf, len, "%.*s/speadcast/plugins", (int)(slash - info.dli_fname),
                     info.dli_fname);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int spc_plugin_dirs(const char *const *plugin_path, char ***out)
{
    char **v = NULL;
    size_t n = 0;
    int rc = 0;
    if (!out)
        return -EINVAL;
    if (!(v = calloc(1, sizeof *v)))
        return -ENOMEM;
    for (size_t i = 0; plugin_path && plugin_path[i] && rc == 0; i++)
        if (plugin_path[i][0])
            rc = strv_push(&v, &n, plugin_path[i]);
    const char *env = getenv("SPEADCAST_PLUGIN_PATH");
    if (env && rc == 0) {
        char *copy = strdup(env), *save = NULL;
        if (!copy)
            rc = -ENOMEM;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok && rc == 0;
             tok = strtok_r(NULL, ":", &save))
            rc = strv_push(&v, &n, tok);
        free(copy);
    }
    char beside[PATH_MAX];
    if (rc == 0 && beside_library(beside, sizeof beside) == 0)
        rc = strv_push(&v, &n, beside);
    if (rc == 0)
        rc = strv_push(&v, &n, SPC_PLUGIN_DIR);
    if (rc < 0) {
        spc_strv_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists transport names of module files in dir, sorted, appended to *names (no dups). */
static void scan_dir(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    const size_t pl = strlen(MODULE_PREFIX), sl = strlen(MODULE_SUFFIX);
    char **found = NULL;
    size_t nf = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= pl + sl || strncmp(e->d_name, MODULE_PREFIX, pl) ||
            strcmp(e->d_name + len - sl, MODULE_SUFFIX))
            continue;
        char name[MAX_NAME_LEN + 1];
        if (len - pl - sl > MAX_NAME_LEN)
            continue;
        memcpy(name, e->d_name + pl, len - pl - sl);
        name[len - pl - sl] = '\0';
        if (spci_transport_name_check(name) == 0 && strv_push(&found, &nf, name) < 0)
            break;
    }
    closedir(d);
    if (found)
        qsort(found, nf, sizeof *found, cmp_str);
    for (size_t i = 0; i < nf; i++)
        if (strv_push(names, n, found[i]) < 0)
            break;
    spc_strv_free(found);
}

/* ------------------------------------------------------------ loading modules */

/* What is at a module path, before anything opens it (opening a FIFO would block with
 * loader_lock held). Returns 0 for a regular file (through any symbolic links);
 * -ENOENT when nothing is there, a dangling symbolic link included (the search goes on
 * to the next directory, as for a missing file); -SPC_EPLUGIN for anything else that
 * has the name (FIFO, directory, device, unreadable): that file is what the name
 * resolves to, so it fails the load. The reason goes to *why. */
static int probe_file(const char *file, struct text *why)
{
    struct stat st;
    if (stat(file, &st) != 0) {
        int e = errno;
        char target[PATH_MAX];
        ssize_t n = e == ENOENT ? readlink(file, target, sizeof target - 1) : -1;
        if (n >= 0) {
            target[n] = '\0';
            text_add(why, "dangling symbolic link to %s (skipped)", target);
            return -ENOENT;
        }
        text_add(why, "%s", strerror(e));
        return e == ENOENT || e == ENOTDIR ? -ENOENT : -SPC_EPLUGIN;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                           : S_ISDIR(st.st_mode) ? "a directory"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                       : "not a file";
        text_add(why, "not a regular file (%s): not opened", kind);
        return -SPC_EPLUGIN;
    }
    return 0;
}

/* Caller holds loader_lock. */
static int ltdl_ready(struct text *why)
{
    if (ltdl_state == 0)
        ltdl_state = lt_dlinit() == 0 ? 1 : -1;
    if (ltdl_state < 0) {
        text_add(why, "lt_dlinit failed");
        return -SPC_EPLUGIN;
    }
    return 0;
}

/* Loads one module file and checks it; on success the module is resident and *out is a
 * new registry record (not yet linked). *abi receives the ABI major of the entry point
 * found (0 if none). Caller holds loader_lock. */
static int load_module(const char *file, const char *expect_name, struct spci_plugin **out,
                       struct text *why, unsigned *abi)
{
    *abi = 0;
    int rc = ltdl_ready(why);
    if (rc < 0)
        return rc;
    /* The exact file, with no lt_dladvise_ext: given a name without extension libltdl
     * would first try NAME.la, so a stray libtool archive beside the plugin could make
     * it load another file or fail. probe_file has checked it is a regular file. */
    lt_dladvise adv;
    lt_dlhandle h = NULL;
    if (lt_dladvise_init(&adv) == 0) {
        if (lt_dladvise_local(&adv) == 0)
            h = lt_dlopenadvise(file, adv);
        lt_dladvise_destroy(&adv);
    }
    if (!h) {
        const char *e = lt_dlerror();
        /* libltdl reports most dlopen failures as "file not found" once it has tried its
         * other loaders; ask the dynamic linker directly for the real reason (undefined
         * symbol, wrong ELF class, missing dependency). RTLD_NOW|RTLD_LOCAL matches how
         * the plugin was linked, and anything that unexpectedly opens is closed again. */
        dlerror();
        void *probe = dlopen(file, RTLD_NOW | RTLD_LOCAL);
        const char *de = probe ? NULL : dlerror();
        if (probe)
            dlclose(probe);
        text_add(why, "cannot load: %s", de ? de : e ? e : "unknown libltdl error");
        return -SPC_EPLUGIN;
    }
    void *sym = lt_dlsym(h, SPC_TRANSPORT_ENTRY_SYMBOL);
    if (!sym) {
        unsigned other = 0;
        for (unsigned v = 0; v <= MAX_PROBED_ABI && !other; v++) {
            char name[64];
            snprintf(name, sizeof name, "spc_transport_entry_v%u", v);
            if (v != SPC_TRANSPORT_ABI_MAJOR && lt_dlsym(h, name))
                other = v ? v : UINT32_MAX;
        }
        if (other) {
            *abi = other == UINT32_MAX ? 0 : other;
            text_add(why,
                     "wrong ABI: no entry point " SPC_TRANSPORT_ENTRY_SYMBOL
                     ", it exports spc_transport_entry_v%u (plugin ABI %u, this core speaks ABI %d)",
                     *abi, *abi, SPC_TRANSPORT_ABI_MAJOR);
        } else {
            text_add(why, "no entry point " SPC_TRANSPORT_ENTRY_SYMBOL " (not a speadcast transport?)");
        }
        lt_dlclose(h);
        return -SPC_EPLUGIN;
    }
    *abi = SPC_TRANSPORT_ABI_MAJOR;
    spc_transport_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer, as dlsym requires */
    char canon[PATH_MAX];
    const char *path = realpath(file, canon) ? canon : file;
    rc = make_plugin(entry(), expect_name, path, out, why);
    if (rc < 0) {
        lt_dlclose(h);
        return rc;
    }
    lt_dlmakeresident(h);
    spci_log(SPC_LOG_DEBUG, "loaded transport %s %s from %s", (*out)->name,
             (*out)->desc->version, path);
    return 0;
}

/* Resolves one module file: the resident record, or a fresh load. Caller holds the lock. */
static int use_module(const char *file, const char *name, struct spci_plugin **out,
                      struct text *why, unsigned *abi)
{
    char canon[PATH_MAX];
    if (realpath(file, canon)) {
        struct spci_plugin *p = find_resident(canon);
        if (p && strcmp(p->name, name)) {
            text_add(why, "is %s, already loaded as transport \"%s\"", canon, p->name);
            return -SPC_EPLUGIN;
        }
        if (p) {
            *out = p;
            *abi = SPC_TRANSPORT_ABI_MAJOR;
            return 0;
        }
    }
    struct spci_plugin *p;
    int rc = load_module(file, name, &p, why, abi);
    if (rc < 0)
        return rc;
    p->next = registry;
    registry = p;
    *out = p;
    return 0;
}

/* Appends "Available transports: a, b" for the search directories. Caller holds the lock. */
static void add_available(struct text *t, char **dirs)
{
    char **names = NULL;
    size_t n = 0;
    for (struct spci_plugin *p = registry; p; p = p->next)
        if (!p->path)
            strv_push(&names, &n, p->name);
    for (size_t i = 0; dirs && dirs[i]; i++)
        scan_dir(dirs[i], &names, &n);
    text_add(t, "\nAvailable transports:");
    for (size_t i = 0; i < n; i++)
        text_add(t, "%s %s", i ? "," : "", names[i]);
    if (!n)
        text_add(t, " none");
    spc_strv_free(names);
}

int spci_plugin_find(const char *name, const char *const *plugin_path,
                     const struct spci_plugin **out, char *err, size_t errlen)
{
    if (spci_transport_name_check(name) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "transport: \"%.*s\" is not a valid transport name "
                 "(letters, digits, '_' and '-', at most %d)", MAX_NAME_LEN + 8,
                 name ? name : "(null)", MAX_NAME_LEN);
        put_err(err, errlen, msg);
        return -SPC_ECONFIG;
    }
    char **dirs = NULL;
    int rc = spc_plugin_dirs(plugin_path, &dirs);
    if (rc < 0) {
        put_err(err, errlen, "out of memory");
        return rc;
    }
    struct text tried = {0}, msg = {0};
    struct spci_plugin *found = NULL;
    int failed = 0;
    pthread_mutex_lock(&loader_lock);
    rc = register_builtins();
    if (rc == 0)
        found = find_builtin(name);
    for (size_t i = 0; rc == 0 && !found && !failed && dirs[i]; i++) {
        char file[PATH_MAX];
        if (snprintf(file, sizeof file, "%s/" MODULE_PREFIX "%s" MODULE_SUFFIX, dirs[i], name) >=
            (int)sizeof file) {
            text_add(&tried, "\n  %s/" MODULE_PREFIX "%s" MODULE_SUFFIX ": path too long", dirs[i], name);
            continue;
        }
        struct text why = {0};
        unsigned abi;
        int lrc = probe_file(file, &why);
        if (lrc == -ENOENT) {
            text_add(&tried, "\n  %s: %s", file, text_str(&why));
            free(why.p);
            continue;
        }
        if (lrc == 0)
            lrc = use_module(file, name, &found, &why, &abi);
        if (lrc == -ENOMEM)
            rc = lrc;
        else if (lrc < 0)
            failed = 1;
        text_add(&tried, "\n  %s: %s", file, lrc < 0 ? text_str(&why) : "loaded");
        free(why.p);
    }
    if (rc == 0 && !found) {
        text_add(&msg, "transport \"%s\" %s. Files tried:%s", name,
                 failed ? "failed to load" : "not found", text_str(&tried));
        add_available(&msg, dirs);
        rc = -SPC_EPLUGIN;
    }
    pthread_mutex_unlock(&loader_lock);
    if (rc == 0)
        *out = found;
    else
        put_err(err, errlen, rc == -ENOMEM ? "out of memory" : text_str(&msg));
    free(tried.p);
    free(msg.p);
    spc_strv_free(dirs);
    return rc;
}

/* ------------------------------------------------------------ catalogue */

static int info_fill(struct spc_transport_info *info, const char *name, const char *path,
                     const struct spci_plugin *p, int status, const char *message, unsigned abi)
{
    memset(info, 0, sizeof *info);
    info->status = status;
    info->name = strdup(name);
    info->path = path ? strdup(path) : NULL;
    info->message = message ? strdup(message) : NULL;
    info->abi_major = abi;
    int bad = !info->name || (path && !info->path) || (message && !info->message);
    if (p) {
        const struct spc_transport_descriptor *d = p->desc;
        info->builtin = p->path == NULL;
        info->version = strdup(d->version);
        info->description = strdup(d->description ? d->description : "");
        info->abi_major = d->abi_major;
        info->abi_minor = d->abi_minor;
        info->caps = d->caps;
        info->max_substreams = d->max_substreams;
        bad |= !info->version || !info->description;
    }
    return bad ? -ENOMEM : 0;
}

void spc_transport_list_free(struct spc_transport_info *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++) {
        free(list[i].name);
        free(list[i].path);
        free(list[i].version);
        free(list[i].description);
        free(list[i].message);
    }
    free(list);
}

static int list_push(struct spc_transport_info **list, size_t *n, size_t *cap)
{
    if (*n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    struct spc_transport_info *nl = realloc(*list, nc * sizeof *nl);
    if (!nl)
        return -ENOMEM;
    *list = nl;
    *cap = nc;
    return 0;
}

int spc_transport_list(const char *const *plugin_path, struct spc_transport_info **out,
                       size_t *n_out)
{
    if (!out || !n_out)
        return -EINVAL;
    char **dirs = NULL;
    int rc = spc_plugin_dirs(plugin_path, &dirs);
    if (rc < 0)
        return rc;
    struct spc_transport_info *list = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&loader_lock);
    rc = register_builtins();
    for (struct spci_plugin *p = registry; rc == 0 && p; p = p->next) {
        if (p->path)
            continue;
        if ((rc = list_push(&list, &n, &cap)) == 0)
            rc = info_fill(&list[n++], p->name, NULL, p, 0, NULL, p->desc->abi_major);
    }
    for (size_t d = 0; rc == 0 && dirs[d]; d++) {
        char **names = NULL;
        size_t nn = 0;
        scan_dir(dirs[d], &names, &nn);
        for (size_t i = 0; rc == 0 && i < nn; i++) {
            char file[PATH_MAX];
            if (snprintf(file, sizeof file, "%s/" MODULE_PREFIX "%s" MODULE_SUFFIX, dirs[d],
                         names[i]) >= (int)sizeof file)
                continue;
            /* The same decisions as spci_plugin_find: a skipped file (dangling link)
             * shadows nothing; the first file not skipped decides the name. */
            const char *earlier = NULL;
            for (size_t j = 0; j < n && !earlier; j++)
                if (!strcmp(list[j].name, names[i]) && list[j].status != -ENOENT &&
                    list[j].status != -EEXIST)
                    earlier = list[j].path ? list[j].path : "the built-in transport";
            if ((rc = list_push(&list, &n, &cap)) < 0)
                break;
            struct text why = {0};
            int lrc = probe_file(file, &why);
            if (lrc == -ENOENT) {
                rc = info_fill(&list[n++], names[i], file, NULL, -ENOENT, text_str(&why), 0);
                free(why.p);
                continue;
            }
            if (earlier) {
                char msg[PATH_MAX + 64];
                snprintf(msg, sizeof msg, "shadowed by %s", earlier);
                rc = info_fill(&list[n++], names[i], file, NULL, -EEXIST, msg, 0);
                free(why.p);
                continue;
            }
            struct spci_plugin *p = NULL;
            unsigned abi = 0;
            if (lrc == 0)
                lrc = use_module(file, names[i], &p, &why, &abi);
            if (lrc == -ENOMEM)
                rc = lrc;
            else
                rc = info_fill(&list[n++], names[i], p ? p->path : file, p,
                               lrc < 0 ? -SPC_EPLUGIN : 0, lrc < 0 ? text_str(&why) : NULL, abi);
            free(why.p);
        }
        spc_strv_free(names);
    }
    pthread_mutex_unlock(&loader_lock);
    spc_strv_free(dirs);
    if (rc < 0) {
        spc_transport_list_free(list, n);
        return rc;
    }
    *out = list;
    *n_out = n;
    return 0;
}
