/* timer.h — wall-clock time for progress lines and benchmarks. */
#ifndef CK_TIMER_H
#define CK_TIMER_H

/* Returns seconds on the monotonic clock (only differences are meaningful). */
double timer_seconds(void);

#endif
