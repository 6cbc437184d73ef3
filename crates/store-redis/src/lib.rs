//! Redis store (redis://, rediss://, redis+sentinel://, redis+cluster://) for sessionbank.
