//! Demo site: a visit counter, sign-in and sign-out everywhere on sessionbank.
