/* speadcast-info: what transports this installation can load, and their schemas (the
 * fi_info of speadcast).
 *
 *   speadcast-info [-p DIR]...              search directories, then every transport found
 *                                           with its path, version, ABI and load result
 *   speadcast-info [-p DIR]... --schema NAME   the JSON Schema of a transport's options
 *   speadcast-info --stream-schema          the JSON Schema of the config document
 *   speadcast-info [-p DIR]... --check FILE    validate a config; print it with defaults
 *
 * Exit status: 0 success, 1 a load/validation failure, 2 bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/speadcast.h"
#include "speadcast/transport.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: speadcast-info [-p|--plugin-path DIR]... "
               "[--schema NAME | --stream-schema | --check FILE]\n");
}

static void help(void)
{
    usage(stdout);
    printf("\nWithout an action: the plugin search path, then every transport found on it\n"
           "with its path, version, ABI and load result.\n\nOptions:\n"
           "  -p, --plugin-path DIR      search DIR first (repeatable; not for --check)\n"
           "  --schema NAME              print the JSON Schema of transport NAME's options\n"
           "  --stream-schema            print the JSON Schema of the stream config document\n"
           "  --check FILE               validate a stream config; print it with the defaults\n"
           "  -h, --help                 show this help and exit\n");
}

static void caps_text(uint32_t caps, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s", caps & SPC_TRANSPORT_CAP_RELIABLE ? " reliable" : "",
             caps & SPC_TRANSPORT_CAP_ASYNC ? " async" : "", caps & SPC_TRANSPORT_CAP_MEMREG ? " memreg" : "",
             caps & SPC_TRANSPORT_CAP_HW_RATE ? " hw-rate" : "");
}

static int list(const char *const *path)
{
    char **dirs;
    if (spc_plugin_dirs(path, &dirs) < 0) {
        fprintf(stderr, "speadcast-info: out of memory\n");
        return 1;
    }
    printf("speadcast %s, transport ABI %d.%d\nsearch path:\n", SPC_VERSION_STRING,
           SPC_TRANSPORT_ABI_MAJOR, SPC_TRANSPORT_ABI_MINOR);
    for (char **d = dirs; *d; d++)
        printf("  %s\n", *d);
    spc_strv_free(dirs);
    struct spc_transport_info *info;
    size_t n;
    int rc = spc_transport_list(path, &info, &n);
    if (rc < 0) {
        fprintf(stderr, "speadcast-info: %s\n", spc_strerror(rc));
        return 1;
    }
    printf("transports:\n");
    for (size_t i = 0; i < n; i++) {
        const struct spc_transport_info *t = &info[i];
        /* The loader's own decisions (spc_transport_list): skipped files (a dangling
         * link) are passed over, the first file of a name decides, later ones are
         * shadowed. */
        const char *result = t->status == 0         ? "ok"
                             : t->status == -EEXIST ? "shadowed"
                             : t->status == -ENOENT ? "skipped"
                                                    : "FAILED";
        printf("  %-12s %-8s", t->name, result);
        if (t->status == 0) {
            char caps[64];
            caps_text(t->caps, caps, sizeof caps);
            printf(" version %s, ABI %u.%u,%s substreams %s%u%s\n", t->version, t->abi_major,
                   t->abi_minor, caps, t->max_substreams ? "<= " : "", t->max_substreams,
                   t->max_substreams ? "" : " (any)");
            printf("               %s\n", t->description);
        } else {
            printf(t->abi_major ? " ABI %u\n" : "\n", t->abi_major);
        }
        printf("               %s\n", t->path ? t->path : "(built in)");
        if (t->message)
            printf("               %s\n", t->message);
    }
    spc_transport_list_free(info, n);
    return 0;
}

int main(int argc, char **argv)
{
    const char **path = calloc((size_t)argc + 1, sizeof *path);
    size_t np = 0;
    const char *schema = NULL, *check = NULL;
    int stream_schema = 0;
    if (!path)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-p") || !strcmp(a, "--plugin-path")) && i + 1 < argc)
            path[np++] = argv[++i];
        else if (!strcmp(a, "--schema") && i + 1 < argc)
            schema = argv[++i];
        else if (!strcmp(a, "--check") && i + 1 < argc)
            check = argv[++i];
        else if (!strcmp(a, "--stream-schema"))
            stream_schema = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            free(path);
            return 0;
        } else {
            usage(stderr);
            free(path);
            return 2;
        }
    }
    if (!!schema + !!check + stream_schema > 1) {
        usage(stderr);
        free(path);
        return 2;
    }
    int status = 0;
    char err[4096];
    char *text = NULL;
    if (schema || stream_schema) {
        int rc = schema ? spc_transport_schema(schema, path, &text, err, sizeof err) : spc_config_document_schema(&text);
        if (rc < 0) {
            fprintf(stderr, "speadcast-info: %s\n", schema ? err : spc_strerror(rc));
            status = 1;
        } else {
            fputs(text, stdout);
        }
    } else if (check) {
        struct spc_config *cfg;
        /* -p directories apply only to listing; a config names its own plugin_path. */
        int rc = spc_config_load(&cfg, check, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", check, err);
            status = 1;
        } else {
            if (spc_config_to_json(cfg, &text) == 0)
                fputs(text, stdout);
            spc_config_destroy(cfg);
        }
    } else {
        status = list(path);
    }
    free(text);
    free(path);
    return status;
}
