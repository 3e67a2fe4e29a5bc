//! A raw encoder for deliberately invalid packets, so the harness can test how a broker
//! handles malformed input. Nothing here validates anything.
