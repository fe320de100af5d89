/* speadcast logging: every message from the core and from plugins goes through one
 * handler the application can replace. Nothing in speadcast writes to stderr except
 * the default handler.
 */
#ifndef SPEADCAST_LOG_H
#define SPEADCAST_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Severity, most severe first. A message is delivered when level <= the current level. */
enum spc_log_level {
    SPC_LOG_ERROR = 0,
    SPC_LOG_WARNING = 1,
    SPC_LOG_INFO = 2,
    SPC_LOG_DEBUG = 3
};

/* Replaces the log handler. handler(user, level, msg) receives one message without a
 * trailing newline; msg is borrowed for the call. handler NULL restores the default,
 * which writes "speadcast: <level>: <msg>\n" to stderr.
 * Thread rules: thread-safe. Calls to the handler are serialised (never two at once),
 * and once this returns the previous handler is never called again, so its user data
 * may be freed. The handler must not call spc_set_log_handler or log itself. */
void spc_set_log_handler(void (*handler)(void *user, int level, const char *msg), void *user);

/* Sets the most verbose level delivered (default SPC_LOG_WARNING, or the value of the
 * SPEADCAST_LOG_LEVEL environment variable read at the first message: error, warning,
 * info, debug or 0-3). Values outside 0..3 are clamped. Thread-safe. */
void spc_set_log_level(int level);
int spc_log_level(void);

/* "error", "warning", "info", "debug"; "unknown" otherwise. Static storage. */
const char *spc_log_level_name(int level);

#ifdef __cplusplus
}
#endif

#endif
