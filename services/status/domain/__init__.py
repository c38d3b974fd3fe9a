"""Pure logic of the status service: wire encoding, validation, the live-state model. No I/O."""
