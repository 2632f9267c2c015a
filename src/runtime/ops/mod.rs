//! Kernel launchers, one module per shader family. Each op builds its pipeline, params and
//! bind groups once and only records dispatches afterwards.

pub mod linear;
