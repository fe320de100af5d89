/* The single log handler. A mutex serialises delivery so that after
 * spc_set_log_handler returns the old handler is never running or called again. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log_internal.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*log_handler)(void *, int, const char *);
static void *log_user;
/* -1 until the first use reads SPEADCAST_LOG_LEVEL. */
static atomic_int log_level = -1;

static int clamp_level(int level)
{
    return level < SPC_LOG_ERROR ? SPC_LOG_ERROR : level > SPC_LOG_DEBUG ? SPC_LOG_DEBUG : level;
}

static int level_from_env(void)
{
    const char *s = getenv("SPEADCAST_LOG_LEVEL");
    if (!s || !*s)
        return SPC_LOG_WARNING;
    for (int l = SPC_LOG_ERROR; l <= SPC_LOG_DEBUG; l++)
        if (!strcasecmp(s, spc_log_level_name(l)))
            return l;
    if (s[0] >= '0' && s[0] <= '9' && s[1] == '\0')
        return clamp_level(s[0] - '0');
    return SPC_LOG_WARNING;
}

int spc_log_level(void)
{
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (l < 0) {
        int want = level_from_env();
        int expected = -1;
        /* An explicit spc_set_log_level that raced with us wins. */
        atomic_compare_exchange_strong(&log_level, &expected, want);
        l = atomic_load(&log_level);
    }
    return l;
}

void spc_set_log_level(int level)
{
    atomic_store(&log_level, clamp_level(level));
}

const char *spc_log_level_name(int level)
{
    switch (level) {
    case SPC_LOG_ERROR: return "error";
    case SPC_LOG_WARNING: return "warning";
    case SPC_LOG_INFO: return "info";
    case SPC_LOG_DEBUG: return "debug";
    default: return "unknown";
    }
}

void spc_set_log_handler(void (*handler)(void *user, int level, const char *msg), void *user)
{
    pthread_mutex_lock(&log_lock);
    log_handler = handler;
    log_user = user;
    pthread_mutex_unlock(&log_lock);
}

int spci_log_enabled(int level)
{
    return level <= spc_log_level();
}

void spci_vlog(int level, const char *fmt, va_list ap)
{
    if (!spci_log_enabled(level))
        return;
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0)
        return;
    size_t len = strlen(buf);
    while (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    pthread_mutex_lock(&log_lock);
    if (log_handler)
        log_handler(log_user, level, buf);
    else
        fprintf(stderr, "speadcast: %s: %s\n", spc_log_level_name(level), buf);
    pthread_mutex_unlock(&log_lock);
}

void spci_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spci_vlog(level, fmt, ap);
    va_end(ap);
}
