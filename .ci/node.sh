# Source this file (". .ci/node.sh") to have Node.js >= 22 first on PATH in this shell. When the node on
# PATH is older (or missing), Node 24 is installed from the npm registry (the `node` package carries the
# official binary) into $SLUICE_NODE_DIR, by default ~/.cache/sluice-node24.
_sluice_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$_sluice_major" -lt 22 ]; then
  _sluice_dir="${SLUICE_NODE_DIR:-$HOME/.cache/sluice-node24}"
  if [ ! -x "$_sluice_dir/node_modules/node/bin/node" ]; then
    echo "node.sh: node $(node --version 2>/dev/null || echo '(none)') is older than 22; installing node@24 into $_sluice_dir" >&2
    mkdir -p "$_sluice_dir"
    npm install --silent --no-audit --no-fund --prefix "$_sluice_dir" node@24 >/dev/null
  fi
  export PATH="$_sluice_dir/node_modules/node/bin:$PATH"
  unset _sluice_dir
fi
unset _sluice_major
