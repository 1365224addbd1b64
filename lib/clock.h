/* clock: monotonic milliseconds for deadlines, and a sleep that is not
 * cut short by signals. Wall-clock time is not here on purpose: callers
 * that need it say CLOCK_REALTIME where they use it. */
#ifndef WARRANT_CLOCK_H
#define WARRANT_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: only differences mean anything. */
uint64_t clock_mono_ms(void);

/* Sleep at least ms milliseconds, resuming after a signal interrupts. */
void clock_sleep_ms(uint64_t ms);

#endif
