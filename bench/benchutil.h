/* Timing helpers shared by the throughput benchmarks. */
#ifndef SPC_BENCHUTIL_H
#define SPC_BENCHUTIL_H

#include <sys/resource.h>
#include <time.h>

struct figures {
    double gbps, pps, cpu_per_gb;
};

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User plus system CPU seconds of this process. */
static inline double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static inline void finish(struct figures *f, double bytes, double packets, double secs, double cpu)
{
    f->gbps = bytes * 8 / secs / 1e9;
    f->pps = packets / secs;
    f->cpu_per_gb = bytes > 0 ? cpu / (bytes / 1e9) : 0;
}

#endif
