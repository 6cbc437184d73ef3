//! mariadb: start a real server for tests (see ../shared/SERVERS.md). Filled in with its backend.
