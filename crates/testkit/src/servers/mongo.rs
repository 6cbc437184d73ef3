//! mongo: start a MongoDB wire-protocol server (SecantusDB) for tests (see ../shared/SERVERS.md). Filled in with its backend.
