#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H

#include <sqlite3.h>
#include <stdint.h>
#include <unistd.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a destructor pointer, which Swift cannot import.
/// Binding with it makes SQLite copy the bytes before the call returns, so Swift buffers may be freed.
static inline sqlite3_destructor_type csqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

/// How long a connection waits for another one's lock, and whether its owner gave up waiting altogether
/// (a worker whose shutdown grace is spent must not sit out a 10 s busy timeout per write).
typedef struct {
    int timeout;
    int abandoned;
} csqlite_busy_state;

/// Retries a locked database every millisecond for the first 100 ms, then every 5 ms, until
/// `timeout` ms have been waited or the wait is abandoned. SQLite's own busy_timeout backs off to 100 ms
/// sleeps, so a writer waiting behind another process's short transaction could oversleep its release.
static inline int csqlite_busy_handler(void *context, int count) {
    csqlite_busy_state *state = (csqlite_busy_state *)context;
    if (__atomic_load_n(&state->abandoned, __ATOMIC_ACQUIRE)) return 0;
    intptr_t waited = count < 100 ? count : 100 + (intptr_t)(count - 100) * 5;
    if (waited >= state->timeout) return 0;
    usleep(count < 100 ? 1000 : 5000);
    return 1;
}

/// Installs the handler; `state` must outlive the connection.
static inline int csqlite_set_busy_handler(sqlite3 *db, csqlite_busy_state *state) {
    return sqlite3_busy_handler(db, csqlite_busy_handler, (void *)state);
}

/// From any thread: every wait for a lock on that connection ends now (and every later one at once).
static inline void csqlite_abandon_waits(csqlite_busy_state *state) {
    __atomic_store_n(&state->abandoned, 1, __ATOMIC_RELEASE);
}

static inline void csqlite_restore_waits(csqlite_busy_state *state) {
    __atomic_store_n(&state->abandoned, 0, __ATOMIC_RELEASE);
}

/// A WAL hook that only notes how many frames the log of "main" holds after a commit (it replaces
/// SQLite's autocheckpoint hook, which would copy that log into the database inside the COMMIT). A
/// connection has one hook for all its databases: an attached one's log is still copied past 1,000
/// frames, exactly as SQLite's default hook does (`sqlite3WalDefaultHook`).
static inline int csqlite_note_wal_frames(void *context, sqlite3 *db, const char *name, int frames) {
    if (name && name[0] == 'm' && name[1] == 'a' && name[2] == 'i' && name[3] == 'n' && name[4] == 0) {
        *(int *)context = frames;
    } else if (frames >= 1000) {
        sqlite3_wal_checkpoint(db, name);
    }
    return SQLITE_OK;
}

/// Installs it; `frames` must outlive the connection.
static inline void csqlite_note_wal_frames_in(sqlite3 *db, int *frames) {
    sqlite3_wal_hook(db, csqlite_note_wal_frames, (void *)frames);
}

#endif
