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
#include <unistd.h>

#include <ltdl.h>

#include "log_internal.h"
#include "error_internal.h"
#include "loader.h"
#include "speadcast/catalogue.h"
#include "options.h"
#include "strbuf.h"
#include "transport_bytes.h"

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
        spci_str_printf(why, "descriptor name is missing or not [A-Za-z0-9_-]{1,%d}", MAX_NAME_LEN);
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
    /* lt_dladvise_ext appends the module extension itself, so hand it the name without. */
    size_t len = strlen(file), sl = strlen(MODULE_SUFFIX);
    char *base = strdup(file);
    if (!base)
        return -ENOMEM;
    if (len > sl && !strcmp(base + len - sl, MODULE_SUFFIX))
        base[len - sl] = '\0';
    lt_dladvise adv;
    lt_dlhandle h = NULL;
    if (lt_dladvise_init(&adv) == 0) {
        if (lt_dladvise_ext(&adv) == 0 && lt_dladvise_local(&adv) == 0)
            h = lt_dlopenadvise(base, adv);
        lt_dladvise_destroy(&adv);
    }
    free(base);
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
            strv_push(&names, &n, p->name);
    for (size_t i = 0; dirs && dirs[i]; i++)
        scan_dir(dirs[i], &names, &n);
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
                 "(letters, digits, '_' and '-', at most %d)", MAX_NAME_LEN + 8,
                 name ? name : "(null)", MAX_NAME_LEN);
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
        if (snprintf(file, sizeof file, "%s/" MODULE_PREFIX "%s" MODULE_SUFFIX, dirs[i], name) >=
            (int)sizeof file) {
            spci_str_printf(&tried, "\n  %s/" MODULE_PREFIX "%s" MODULE_SUFFIX ": path too long", dirs[i], name);
            continue;
        }
        if (access(file, F_OK) != 0) {
            spci_str_printf(&tried, "\n  %s: %s", file, strerror(errno));
            continue;
        }
        struct spci_str why = SPCI_STR_GROWING;
        unsigned abi;
        int lrc = use_module(file, name, &found, &why, &abi);
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
            const char *earlier = NULL;
            for (size_t j = 0; j < n && !earlier; j++)
                if (!strcmp(list[j].name, names[i]))
                    earlier = list[j].path ? list[j].path : "the built-in transport";
            if ((rc = list_push(&list, &n, &cap)) < 0)
                break;
            if (earlier) {
                char msg[PATH_MAX + 64];
                snprintf(msg, sizeof msg, "shadowed by %s", earlier);
                rc = info_fill(&list[n++], names[i], file, NULL, -EEXIST, msg, 0);
                continue;
            }
            struct spci_str why = SPCI_STR_GROWING;
            struct spci_plugin *p = NULL;
            unsigned abi = 0;
            int lrc = use_module(file, names[i], &p, &why, &abi);
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
