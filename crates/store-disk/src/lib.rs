//! The embedded disk store (disk://), sessionbank's default backend.
