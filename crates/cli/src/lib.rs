//! The sessionbank command-line tool.
