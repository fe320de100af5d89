/* The plugins' system call table (syscalls.h), filled with the libc functions. */
#include <unistd.h>

#include "syscalls.h"

SPCU_SYSCALLS_VISIBILITY struct spcu_syscalls spcu_sys = {
    .socket = socket,
    .bind = bind,
    .connect = connect,
    .setsockopt = setsockopt,
    .getsockopt = getsockopt,
    .sendmsg = sendmsg,
    .sendmmsg = sendmmsg,
    .poll = poll,
    .close = close,
};
