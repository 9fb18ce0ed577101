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

/// Retries a locked database every millisecond for the first 100 ms, then every 5 ms, until
/// `timeout` ms have been waited. SQLite's own busy_timeout backs off to 100 ms sleeps, so a writer
/// waiting behind another process's short transaction could oversleep its release by up to 100 ms.
static inline int csqlite_busy_handler(void *context, int count) {
    intptr_t timeout = (intptr_t)context;
    intptr_t waited = count < 100 ? count : 100 + (intptr_t)(count - 100) * 5;
    if (waited >= timeout) return 0;
    usleep(count < 100 ? 1000 : 5000);
    return 1;
}

static inline int csqlite_set_busy_timeout(sqlite3 *db, int milliseconds) {
    return sqlite3_busy_handler(db, csqlite_busy_handler, (void *)(intptr_t)milliseconds);
}

#endif
