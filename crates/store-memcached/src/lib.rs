//! Memcached store (memcached://) for sessionbank.
