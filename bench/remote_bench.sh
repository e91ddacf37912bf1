#!/usr/bin/env bash
# remote_bench: the remote cache through a real nginx on loopback.
#
#   bench/remote_bench.sh [MIB]      (default 1024: a 1 GiB artifact)
#
# 1. A command target writes a MIB-MiB file; machine 1 builds it uploading to
#    nginx, machine 2 downloads it. Compared with curl moving the same object
#    (PUT with -T, GET to a file), and with a local-only build of machine 1.
# 2. examples/tiny's fused_8bit, and fused_8bit on Qwen2.5-0.5B shapes
#    (fuse_bench's synthetic 4-bit base + rank-16 LoRA; no gate, the weights
#    are random): built locally vs downloaded by machine 2.
# 3. The no-op build of fused_8bit with a remote configured vs without.
# MODELBUILD_BIN picks the binary. Everything is under one temp dir, removed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${MODELBUILD_BIN:-$root/build/modelbuild}")"
mib="${1:-1024}"
dir="$(mktemp -d "${TMPDIR:-/tmp}/mb-remote-XXXXXX")"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/nginx/data" "$dir/nginx/tmp"
user=""; [[ "$(id -u)" -eq 0 ]] && user="user root;"
cat >"$dir/nginx/nginx.conf" <<CONF
$user
daemon off; worker_processes 1; pid $dir/nginx/pid; error_log $dir/nginx/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $dir/nginx/tmp; proxy_temp_path $dir/nginx/tmp;
  fastcgi_temp_path $dir/nginx/tmp; uwsgi_temp_path $dir/nginx/tmp; scgi_temp_path $dir/nginx/tmp;
  server { listen 127.0.0.1:$port; client_max_body_size 0;
    location / { root $dir/nginx/data; dav_methods PUT; create_full_put_path on; } } }
CONF
/usr/sbin/nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" &
nginx_pid=$!
trap 'kill $nginx_pid; wait $nginx_pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.5
url="http://127.0.0.1:$port/mb"
secs() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }

echo "== $mib MiB artifact"
for m in local m1 m2; do
  mkdir -p "$dir/$m"
  printf '%s\n' "targets:" "  big:" \
    "    command: \"(echo big; head -c $((mib << 20)) /dev/zero) > {out}/big.bin\"" \
    "    outputs: [big.bin]" >"$dir/$m/modelbuild.yaml"
done
t_local=$(cd "$dir/local" && secs "$bin" big)
t_up=$(cd "$dir/m1" && secs "$bin" big --remote-cache "$url")
t_down=$(cd "$dir/m2" && secs "$bin" big --remote-cache "$url")
blob=$(ls "$dir/nginx/data/mb/cas" | head -1)
src="$dir/m1/build/big/big.bin"
t_curl_put=$(secs curl -sf -T "$src" "$url/curl-copy")
t_curl_get=$(secs curl -sf -o "$dir/curl.bin" "$url/cas/$blob")
rm -f "$dir/curl.bin"
echo "local build (write + hash + store):   ${t_local}s"
echo "machine 1 build + upload:             ${t_up}s  (upload ~ $(echo "$t_up - $t_local" | bc)s)"
echo "machine 2 download + verify + link:   ${t_down}s"
echo "curl PUT of the same object:          ${t_curl_put}s"
echo "curl GET of the same object:          ${t_curl_get}s"

echo "== examples/tiny fused_8bit"
for m in t1 t2; do
  mkdir -p "$dir/$m"
  for p in modelbuild.yaml suite.yaml models adapters tokenizer; do cp -r "$root/examples/tiny/$p" "$dir/$m/"; done
done
echo "machine 1 local build + upload:  $(cd "$dir/t1" && secs "$bin" fused_8bit --remote-cache "$url")s"
echo "machine 2 from the remote:       $(cd "$dir/t2" && secs "$bin" fused_8bit --remote-cache "$url")s"
cp -r "$dir/t1" "$dir/t3"; rm -rf "$dir/t3/.modelbuild" "$dir/t3/build"
echo "machine 3 local, no remote:      $(cd "$dir/t3" && secs "$bin" fused_8bit)s"

echo "== fused_8bit on Qwen2.5-0.5B shapes (fuse to 8 bits, no gate)"
"$(dirname "$bin")/bench/fuse_bench" --dir "$dir/q05" --only none --repeat 1 >/dev/null
for m in q1 q2 q3; do
  mkdir -p "$dir/$m"
  printf '%s\n' "version: 1" "sources: {base: $dir/q05/base, lora: $dir/q05/lora}" "targets:" "  fused_8bit:" \
    "    {base: base, adapters: [lora], fusion: dequantize, dtype: float16, bits: 8, gate: null}" \
    >"$dir/$m/modelbuild.yaml"
done
echo "machine 1 local build + upload:  $(cd "$dir/q1" && secs "$bin" fused_8bit --remote-cache "$url")s"
echo "machine 2 from the remote:       $(cd "$dir/q2" && secs "$bin" fused_8bit --remote-cache "$url")s"
echo "machine 3 local, no remote:      $(cd "$dir/q3" && secs "$bin" fused_8bit)s"
cmp <(cat "$dir/q1/build/fused_8bit/"*.safetensors) <(cat "$dir/q2/build/fused_8bit/"*.safetensors) &&
  echo "machine 2's safetensors are byte-identical to machine 1's"

echo "== no-op build of fused_8bit"
cd "$dir/t2"
if command -v hyperfine >/dev/null; then
  hyperfine -N -w 3 -r 30 "$bin fused_8bit" "$bin fused_8bit --remote-cache $url"
else
  for args in "" "--remote-cache $url"; do
    s=$(date +%s%N); for i in $(seq 30); do "$bin" fused_8bit $args >/dev/null 2>&1; done
    echo "no-op ${args:-without remote}: $(( ($(date +%s%N) - s) / 30000 )) us/run (mean of 30)"
  done
fi
