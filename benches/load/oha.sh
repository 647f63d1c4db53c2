# Sourced by the load scripts: sets $oha to the oha load generator (crates.io), installing it into
# target/oha when it is neither on PATH nor there yet ($OHA overrides).
oha="${OHA:-$(command -v oha || echo target/oha/bin/oha)}"
if [ ! -x "$oha" ]; then
  cargo install oha --locked --root target/oha
  oha=target/oha/bin/oha
fi
