//! Real-server harness and the Store conformance suite for sessionbank.
