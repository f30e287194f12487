//! `casino sim`: synthetic players against a running stack (being written).
