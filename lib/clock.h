/* clock: the one monotonic clock the programs measure intervals with (timeouts, stalls, waits). */
#ifndef POSEIDON_CLOCK_H
#define POSEIDON_CLOCK_H

/* Milliseconds of CLOCK_MONOTONIC: only differences mean anything. */
long long clock_mono_ms(void);

#endif
