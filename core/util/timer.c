/* timer.c — the monotonic clock, so that measured intervals never jump with the date. */
#include "util/timer.h"

#include <time.h>

double timer_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
