/* Where transports are searched for (catalogue.h): the directory list for a plugin_path,
 * the module files a directory holds, and what a transport name may be. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "searchpath.h"
#include "speadcast/catalogue.h"

#ifndef SPC_PLUGIN_DIR
#error "SPC_PLUGIN_DIR must be defined by the build"
#endif

int spci_transport_name_check(const char *name)
{
    size_t n = 0;
    if (!name)
        return -EINVAL;
    for (const char *p = name; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return -EINVAL;
    return n == 0 || n > SPCI_MAX_NAME_LEN ? -EINVAL : 0;
}

int spci_strv_push(char ***v, size_t *n, const char *s)
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
            rc = spci_strv_push(&v, &n, plugin_path[i]);
    const char *env = getenv("SPEADCAST_PLUGIN_PATH");
    if (env && rc == 0) {
        char *copy = strdup(env), *save = NULL;
        if (!copy)
            rc = -ENOMEM;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok && rc == 0;
             tok = strtok_r(NULL, ":", &save))
            rc = spci_strv_push(&v, &n, tok);
        free(copy);
    }
    char beside[PATH_MAX];
    if (rc == 0 && beside_library(beside, sizeof beside) == 0)
        rc = spci_strv_push(&v, &n, beside);
    if (rc == 0)
        rc = spci_strv_push(&v, &n, SPC_PLUGIN_DIR);
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
void spci_plugin_scan_dir(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    const size_t pl = strlen(SPCI_MODULE_PREFIX), sl = strlen(SPCI_MODULE_SUFFIX);
    char **found = NULL;
    size_t nf = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= pl + sl || strncmp(e->d_name, SPCI_MODULE_PREFIX, pl) ||
            strcmp(e->d_name + len - sl, SPCI_MODULE_SUFFIX))
            continue;
        char name[SPCI_MAX_NAME_LEN + 1];
        if (len - pl - sl > SPCI_MAX_NAME_LEN)
            continue;
        memcpy(name, e->d_name + pl, len - pl - sl);
        name[len - pl - sl] = '\0';
        if (spci_transport_name_check(name) == 0 && spci_strv_push(&found, &nf, name) < 0)
            break;
    }
    closedir(d);
    if (found)
        qsort(found, nf, sizeof *found, cmp_str);
    for (size_t i = 0; i < nf; i++)
        if (spci_strv_push(names, n, found[i]) < 0)
            break;
    spc_strv_free(found);
}

