/* The system calls of the udp and tcp plugins, through one table (SQLite's os layer,
 * aSyscall[]): a plugin calls spcu_sys.sendmsg(...) instead of sendmsg(...), so a test
 * can put a function of its own in any slot and inject an error, a short write or a
 * delay exactly where the call happens.
 *
 * The table is private to each plugin: the helper library is linked statically into
 * every plugin that uses it and compiled with hidden visibility, so a shipped plugin
 * exports nothing but its entry point and each plugin has its own copy. Tests build a
 * second copy of a plugin (tests/faults/CMakeLists.txt) from the same sources with
 * SPCU_SYSCALLS_EXPORT defined, which gives the table default visibility and adds it to
 * the plugin's version script; the test dlopen()s that file (the same handle the loader
 * gets) and dlsym()s "spcu_sys". Nothing is added to the plugin ABI.
 *
 * Rules: slots hold the libc functions until a test replaces them; a replacement keeps
 * the libc contract (return -1 and set errno on failure). Only tests write the table,
 * and only while no stream of that plugin is open. */
#ifndef SPCU_SYSCALLS_H
#define SPCU_SYSCALLS_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

struct spcu_syscalls {
    int (*socket)(int domain, int type, int protocol);
    int (*bind)(int fd, const struct sockaddr *addr, socklen_t len);
    int (*connect)(int fd, const struct sockaddr *addr, socklen_t len);
    int (*setsockopt)(int fd, int level, int name, const void *val, socklen_t len);
    int (*getsockopt)(int fd, int level, int name, void *val, socklen_t *len);
    ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
    int (*sendmmsg)(int fd, struct mmsghdr *msgs, unsigned int n, int flags);
    int (*poll)(struct pollfd *fds, nfds_t n, int timeout_ms);
    int (*close)(int fd);
};

#ifdef SPCU_SYSCALLS_EXPORT
#define SPCU_SYSCALLS_VISIBILITY __attribute__((visibility("default")))
#else
#define SPCU_SYSCALLS_VISIBILITY __attribute__((visibility("hidden")))
#endif

extern SPCU_SYSCALLS_VISIBILITY struct spcu_syscalls spcu_sys;

#endif
