/* Transport plugin loader: name -> module file -> checked descriptor -> full ops table;
 * and the catalogue listing (spc_transport_list), which loads what it lists. Where files
 * are searched for is searchpath.c.
 *
 * Invariants:
 * - Every lt_dl* call, the registry and each entry-point call happen under loader_lock
 *   (libltdl is not thread-safe).
 * - A plugin in the registry passed every check and is resident: its module is never
 *   closed, so descriptors and ops stay valid for the life of the process.
 * - Registry entries are keyed by canonical file path; built-ins have no path.
 */
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

#include "array.h"
#include "error_internal.h"
#include "loader.h"
#include "log_internal.h"
#include "options.h"
#include "searchpath.h"
#include "strbuf.h"
#include "speadcast/catalogue.h"
#include "transport_bytes.h"

/* ABI majors probed when spc_transport_entry_v1 is missing, to say what a plugin speaks. */
#define MAX_PROBED_ABI 16

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static int ltdl_state; /* 0 not yet initialised, 1 ready, -1 lt_dlinit failed */
static struct spci_plugin *registry;
static int builtins_registered;

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


static const size_t min_desc_size =
    offsetof(struct spc_transport_descriptor, ops) + sizeof(void *);
static const size_t min_ops_size = offsetof(struct spc_transport_ops, send) + sizeof(void *);

/* Checks a descriptor and builds its plugin record. expect_name is the name the module
 * file promises (NULL for built-ins). Reason text goes to *why. */
static int make_plugin(const struct spc_transport_descriptor *d, const char *expect_name,
                       const char *path, struct spci_plugin **out, struct spci_str *why)
{
    if (!d) {
        spci_str_printf(why, "entry point returned no descriptor");
        return -SPC_EPLUGIN;
    }
    if (d->struct_size < min_desc_size) {
        spci_str_printf(why, "descriptor struct_size %u is below the ABI %d minimum of %zu",
                 (unsigned)d->struct_size, SPC_TRANSPORT_ABI_MAJOR, min_desc_size);
        return -SPC_EPLUGIN;
    }
    if (d->abi_major != SPC_TRANSPORT_ABI_MAJOR) {
        spci_str_printf(why, "descriptor declares ABI %u, this core speaks ABI %d",
                 (unsigned)d->abi_major, SPC_TRANSPORT_ABI_MAJOR);
        return -SPC_EPLUGIN;
    }
    if (spci_transport_name_check(d->name) < 0) {
        spci_str_printf(why, "descriptor name is missing or not [A-Za-z0-9_-]{1,%d}", SPCI_MAX_NAME_LEN);
        return -SPC_EPLUGIN;
    }
    if (expect_name && strcmp(expect_name, d->name) != 0) {
        spci_str_printf(why, "declares transport \"%s\" but the file is named for \"%s\"", d->name,
                 expect_name);
        return -SPC_EPLUGIN;
    }
    if (!d->version) {
        spci_str_printf(why, "descriptor has no version");
        return -SPC_EPLUGIN;
    }
    if (d->object_size < sizeof(struct spc_transport)) {
        spci_str_printf(why, "object_size %zu is smaller than struct spc_transport (%zu)",
                 d->object_size, sizeof(struct spc_transport));
        return -SPC_EPLUGIN;
    }
    const struct spc_transport_ops *ops = d->ops;
    if (!ops) {
        spci_str_printf(why, "descriptor has no ops table");
        return -SPC_EPLUGIN;
    }
    if (ops->struct_size < min_ops_size) {
        spci_str_printf(why, "ops struct_size %u is below the ABI %d minimum of %zu",
                 (unsigned)ops->struct_size, SPC_TRANSPORT_ABI_MAJOR, min_ops_size);
        return -SPC_EPLUGIN;
    }
    const char *missing = !ops->open ? "open" : !ops->close ? "close" : !ops->send ? "send" : NULL;
    if (missing) {
        spci_str_printf(why, "mandatory op %s is NULL", missing);
        return -SPC_EPLUGIN;
    }
    if ((d->caps & SPC_TRANSPORT_CAP_ASYNC) &&
        (!SPC_HAS_FIELD(ops, struct spc_transport_ops, poll) || !ops->flush || !ops->poll)) {
        spci_str_printf(why, "declares SPC_TRANSPORT_CAP_ASYNC but lacks the flush or poll op");
        return -SPC_EPLUGIN;
    }
    char terr[256];
    if (spci_option_table_check(d, terr, sizeof terr) < 0) {
        spci_str_printf(why, "bad option table: %s", terr);
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
        struct spci_str why = SPCI_STR_GROWING;
        struct spci_plugin *p;
        int rc = make_plugin(builtins[i](), NULL, NULL, &p, &why);
        if (rc < 0) {
            /* A broken built-in is a core bug; report it rather than abort. */
            spci_log(SPC_LOG_ERROR, "built-in transport %zu rejected: %s", i, spci_str_text(&why));
            spci_str_free(&why);
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

/* ------------------------------------------------------------ loading modules */

/* What is at a module path, before anything opens it (opening a FIFO would block with
 * loader_lock held). Returns 0 for a regular file (through any symbolic links);
 * -ENOENT when nothing is there, a dangling symbolic link included (the search goes on
 * to the next directory, as for a missing file); -SPC_EPLUGIN for anything else that
 * has the name (FIFO, directory, device, unreadable): that file is what the name
 * resolves to, so it fails the load. The reason goes to *why. */
static int probe_file(const char *file, struct spci_str *why)
{
    struct stat st;
    if (stat(file, &st) != 0) {
        int e = errno;
        char target[PATH_MAX];
        ssize_t n = e == ENOENT ? readlink(file, target, sizeof target - 1) : -1;
        if (n >= 0) {
            target[n] = '\0';
            spci_str_printf(why, "dangling symbolic link to %s (skipped)", target);
            return -ENOENT;
        }
        spci_str_printf(why, "%s", strerror(e));
        return e == ENOENT || e == ENOTDIR ? -ENOENT : -SPC_EPLUGIN;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                           : S_ISDIR(st.st_mode) ? "a directory"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                       : "not a file";
        spci_str_printf(why, "not a regular file (%s): not opened", kind);
        return -SPC_EPLUGIN;
    }
    return 0;
}

/* Caller holds loader_lock. */
static int ltdl_ready(struct spci_str *why)
{
    if (ltdl_state == 0)
        ltdl_state = lt_dlinit() == 0 ? 1 : -1;
    if (ltdl_state < 0) {
        spci_str_printf(why, "lt_dlinit failed");
        return -SPC_EPLUGIN;
    }
    return 0;
}

/* Loads one module file and checks it; on success the module is resident and *out is a
 * new registry record (not yet linked). *abi receives the ABI major of the entry point
 * found (0 if none). Caller holds loader_lock. */
static int load_module(const char *file, const char *expect_name, struct spci_plugin **out,
                       struct spci_str *why, unsigned *abi)
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
        spci_str_printf(why, "cannot load: %s", de ? de : e ? e : "unknown libltdl error");
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
            spci_str_printf(why,
                     "wrong ABI: no entry point " SPC_TRANSPORT_ENTRY_SYMBOL
                     ", it exports spc_transport_entry_v%u (plugin ABI %u, this core speaks ABI %d)",
                     *abi, *abi, SPC_TRANSPORT_ABI_MAJOR);
        } else {
            spci_str_printf(why, "no entry point " SPC_TRANSPORT_ENTRY_SYMBOL " (not a speadcast transport?)");
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
                      struct spci_str *why, unsigned *abi)
{
    char canon[PATH_MAX];
    if (realpath(file, canon)) {
        struct spci_plugin *p = find_resident(canon);
        if (p && strcmp(p->name, name)) {
            spci_str_printf(why, "is %s, already loaded as transport \"%s\"", canon, p->name);
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
static void add_available(struct spci_str *t, char **dirs)
{
    char **names = NULL;
    size_t n = 0;
    for (struct spci_plugin *p = registry; p; p = p->next)
        if (!p->path)
            spci_strv_push(&names, &n, p->name);
    for (size_t i = 0; dirs && dirs[i]; i++)
        spci_plugin_scan_dir(dirs[i], &names, &n);
    spci_str_printf(t, "\nAvailable transports:");
    for (size_t i = 0; i < n; i++)
        spci_str_printf(t, "%s %s", i ? "," : "", names[i]);
    if (!n)
        spci_str_printf(t, " none");
    spc_strv_free(names);
}

int spci_plugin_find(const char *name, const char *const *plugin_path,
                     const struct spci_plugin **out, char *err, size_t errlen)
{
    if (spci_transport_name_check(name) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "transport: \"%.*s\" is not a valid transport name "
                 "(letters, digits, '_' and '-', at most %d)", SPCI_MAX_NAME_LEN + 8,
                 name ? name : "(null)", SPCI_MAX_NAME_LEN);
        spci_copy_error(msg, err, errlen);
        return -SPC_ECONFIG;
    }
    char **dirs = NULL;
    int rc = spc_plugin_dirs(plugin_path, &dirs);
    if (rc < 0) {
        spci_copy_error("out of memory", err, errlen);
        return rc;
    }
    struct spci_str tried = SPCI_STR_GROWING, msg = SPCI_STR_GROWING;
    struct spci_plugin *found = NULL;
    int failed = 0;
    pthread_mutex_lock(&loader_lock);
    rc = register_builtins();
    if (rc == 0)
        found = find_builtin(name);
    for (size_t i = 0; rc == 0 && !found && !failed && dirs[i]; i++) {
        char file[PATH_MAX];
        if (snprintf(file, sizeof file, "%s/" SPCI_MODULE_PREFIX "%s" SPCI_MODULE_SUFFIX, dirs[i], name) >=
            (int)sizeof file) {
            spci_str_printf(&tried, "\n  %s/" SPCI_MODULE_PREFIX "%s" SPCI_MODULE_SUFFIX ": path too long", dirs[i], name);
            continue;
        }
        struct spci_str why = SPCI_STR_GROWING;
        unsigned abi;
        int lrc = probe_file(file, &why);
        if (lrc == -ENOENT) {
            spci_str_printf(&tried, "\n  %s: %s", file, spci_str_text(&why));
            spci_str_free(&why);
            continue;
        }
        if (lrc == 0)
            lrc = use_module(file, name, &found, &why, &abi);
        if (lrc == -ENOMEM)
            rc = lrc;
        else if (lrc < 0)
            failed = 1;
        spci_str_printf(&tried, "\n  %s: %s", file, lrc < 0 ? spci_str_text(&why) : "loaded");
        spci_str_free(&why);
    }
    if (rc == 0 && !found) {
        spci_str_printf(&msg, "transport \"%s\" %s. Files tried:%s", name,
                 failed ? "failed to load" : "not found", spci_str_text(&tried));
        add_available(&msg, dirs);
        rc = -SPC_EPLUGIN;
    }
    pthread_mutex_unlock(&loader_lock);
    if (rc == 0)
        *out = found;
    else
        spci_copy_error(rc == -ENOMEM ? "out of memory" : spci_str_text(&msg), err, errlen);
    spci_str_free(&tried);
    spci_str_free(&msg);
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
        if ((rc = spci_grow((void **)&list, &cap, n + 1, sizeof *list)) == 0)
            rc = info_fill(&list[n++], p->name, NULL, p, 0, NULL, p->desc->abi_major);
    }
    for (size_t d = 0; rc == 0 && dirs[d]; d++) {
        char **names = NULL;
        size_t nn = 0;
        spci_plugin_scan_dir(dirs[d], &names, &nn);
        for (size_t i = 0; rc == 0 && i < nn; i++) {
            char file[PATH_MAX];
            if (snprintf(file, sizeof file, "%s/" SPCI_MODULE_PREFIX "%s" SPCI_MODULE_SUFFIX, dirs[d],
                         names[i]) >= (int)sizeof file)
                continue;
            /* The same decisions as spci_plugin_find: a skipped file (dangling link)
             * shadows nothing; the first file not skipped decides the name. */
            const char *earlier = NULL;
            for (size_t j = 0; j < n && !earlier; j++)
                if (!strcmp(list[j].name, names[i]) && list[j].status != -ENOENT &&
                    list[j].status != -EEXIST)
                    earlier = list[j].path ? list[j].path : "the built-in transport";
            if ((rc = spci_grow((void **)&list, &cap, n + 1, sizeof *list)) < 0)
                break;
            struct spci_str why = SPCI_STR_GROWING;
            int lrc = probe_file(file, &why);
            if (lrc == -ENOENT) {
                rc = info_fill(&list[n++], names[i], file, NULL, -ENOENT, spci_str_text(&why), 0);
                spci_str_free(&why);
                continue;
            }
            if (earlier) {
                char msg[PATH_MAX + 64];
                snprintf(msg, sizeof msg, "shadowed by %s", earlier);
                rc = info_fill(&list[n++], names[i], file, NULL, -EEXIST, msg, 0);
                spci_str_free(&why);
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
                               lrc < 0 ? -SPC_EPLUGIN : 0, lrc < 0 ? spci_str_text(&why) : NULL, abi);
            spci_str_free(&why);
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
