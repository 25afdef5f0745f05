#!/usr/bin/env bash
# Builds kryoptic's PKCS#11 module for the device tests (tests/pkcs11_impls.rs)
# into target/kryoptic/libkryoptic_pkcs11.so. kryoptic's EdDSA needs OpenSSL
# 3.2 or later and Debian 12 has 3.0, so it is linked statically against
# libcrypto built from the openssl-src crate's sources (OpenSSL 3.6). Needs
# libclang-dev (bindgen), libsqlite3-dev, make and perl. Kept when already built; set
# ARCA_KRYOPTIC_REBUILD=1 to build again.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$PWD/target/kryoptic
manifest=.ci/kryoptic/Cargo.toml
if [ -f "$out/libkryoptic_pkcs11.so" ] && [ "${ARCA_KRYOPTIC_REBUILD:-}" != 1 ]; then
  echo "kryoptic: $out/libkryoptic_pkcs11.so is there"
  exit 0
fi
start=$(date +%s)
mkdir -p "$out"
cargo fetch --locked --manifest-path "$manifest" >/dev/null
src=$(cargo metadata --locked --format-version 1 --manifest-path "$manifest" \
  | python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="openssl-src"))')
rm -rf "$out/openssl"
cp -a "$src/openssl" "$out/openssl"
# ossl-sys's own configuration (its build.rs), static and without modules;
# only libcrypto is needed
(
  cd "$out/openssl"
  ./Configure no-shared no-module no-legacy no-apps no-docs no-tests \
    no-deprecated no-aria no-argon2 no-atexit no-des no-dsa no-cast no-mdc2 \
    no-ec2m no-rc2 no-rc4 no-rc5 no-rmd160 no-seed no-sm2 no-sm3 no-sm4 \
    enable-ec_nistp_64_gcc_128 '-DDEVRANDOM=\"/dev/urandom\"' >"$out/openssl-configure.log" 2>&1
  make -j"$(nproc)" build_generated >"$out/openssl-make.log" 2>&1
  make -j"$(nproc)" libcrypto.a >>"$out/openssl-make.log" 2>&1
) || { tail -n 20 "$out"/openssl-*.log; echo "kryoptic: building OpenSSL failed"; exit 1; }
openssl_done=$(date +%s)
KRYOPTIC_OPENSSL_SOURCES="$out/openssl" cargo build --release --locked -q \
  --manifest-path "$manifest" --target-dir "$out/build"
so=$(ls -t "$out"/build/release/deps/libkryoptic_pkcs11-*.so | head -1)
cp "$so" "$out/libkryoptic_pkcs11.so"
end=$(date +%s)
echo "kryoptic: built $out/libkryoptic_pkcs11.so in $((end - start)) s (OpenSSL $((openssl_done - start)) s, kryoptic $((end - openssl_done)) s)"
