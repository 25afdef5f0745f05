#!/bin/sh
# Builds the seed corpora in fuzz/corpus/<target> from the conex-made test
# vectors, the bad-input corpus and the shipped ceremony files.
set -eu
cd "$(dirname "$0")"
root=..
v=$root/tests/vectors
mk() { mkdir -p "corpus/$1"; }
for t in opam resources expr key ceremony profile key_location journal manifest qr_frames patch bundle sign_request; do mk $t; done

n=0
for f in $v/repo/root $v/repo/snap $v/repo/ts $v/repo/keys/* $v/stages/* $v/variants/root.* \
         $root/tests/bad-inputs/*/root; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  cp "$f" corpus/opam/seed-$n
  cp "$f" corpus/resources/seed-$n
done
find $v/repo/packages -type f | head -20 | while read -r f; do
  cp "$f" "corpus/opam/pkg-$(echo "$f" | sha256sum | cut -c1-12)"
done

i=0
for e in '(2 [rootA rootB])' '(1 [a b c])' '(1 [a "sha256=02f4b9911e6a40314bcdd80ba24eb0342bdd96b1b80117f8c0deb8c3eddd238e" 0x0])' \
         '((1 [a]) && (2 [b c]))' '((1 [a]) || (1 [b]))' '(0 [])'; do
  i=$((i + 1)); printf 'e: %s\n' "$e" > corpus/expr/seed-$i
done

# key: first byte selects the algorithm (even: ed25519, odd: rsa), 0xFF
# separates key data from signature bytes.
printf '\000KBcCuJOFznt1cjczq1/A8FuHWB95SXgQ7Cp5wWssxnk=\377rEqmZASaC0p1Y/I3KTx5plCE+jc9UtH9VU1BjzvqOQHFa9E8MCFbNMdP9VHYabHDEftoZTfgwzmlv0YDABPmBA==' > corpus/key/ed25519
python3 - "$v/repo/root" > corpus/key/rsa <<'PY'
import sys, re
t = open(sys.argv[1]).read()
m = re.search(r'rsa=(-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----)', t, re.S)
sys.stdout.buffer.write(b'\x01' + m.group(1).encode() + b'\xff' + b'\x00' * 512)
PY

for f in $root/ceremonies/*.toml; do cp "$f" corpus/ceremony/; done
cat > corpus/profile/seed-1 <<'P'
[holders]
alice = "pkcs11:token=root-1;object=rootA?module-path=/usr/lib/softhsm/libsofthsm2.so"
bob = "piv:serial=15835999;slot=9c"
carol = "file:/media/usb/rootC.private"
P
i=0
for l in 'pkcs11:token=root-1;object=rootA?module-path=/usr/lib/softhsm/libsofthsm2.so' \
         'pkcs11:token=My%20Token;id=%01%02;object=k?pin-source=file:/tmp/pin' \
         'pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=abc;token=t;type=private' \
         'piv:serial=15835999;slot=9c' 'piv:slot=9a' 'piv:serial=1;slot=82' 'file:/tmp/k.private'; do
  i=$((i + 1)); printf '%s' "$l" > corpus/key_location/seed-$i
done

python3 > corpus/journal/seed-1 <<'PY'
import json, hashlib
prev = "sha256=" + "0" * 64
out = []
steps = [("begin", {"ceremony": "create-root", "digest": "sha256=" + "ab" * 32}, {}),
         ("root-key:rootA", {"key": "ed25519=KBcCuJOFznt1cjczq1/A8FuHWB95SXgQ7Cp5wWssxnk="}, {}),
         ("sign:rootA", {"counter": 1}, {"root": "sha256=" + "cd" * 32})]
for n, (step, detail, outputs) in enumerate(steps, 1):
    e = {"seq": n, "time": "2026-11-21T23:33:19Z", "step": step, "detail": detail,
         "outputs": outputs, "prev": prev}
    h = "sha256=" + hashlib.sha256(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    e["hash"] = h
    out.append(json.dumps(e, separators=(",", ":"), ensure_ascii=False))
    prev = h
print("\n".join(out))
PY
# manifest: a MANIFEST as arca writes it (over the vector files), and one
# with a path that climbs out of the bundle
python3 - "$v" > corpus/manifest/seed-1 <<'PY'
import hashlib, os, sys
v = sys.argv[1]
lines = []
for rel in ["repo/root", "repo/snap", "repo/ts"]:
    b = open(os.path.join(v, rel), "rb").read()
    lines.append((rel.replace("repo/", ""), b))
lines += [("anchors", b"sha256=ab\n"), ("journal.jsonl", b"{}\n"), ("online/online.toml", b"")]
for p, b in sorted(lines):
    print(f"sha256={hashlib.sha256(b).hexdigest()} {len(b)} {p}")
PY
printf 'sha256=%s 0 a\nsha256=%s 1 ../b\n' "$(printf '' | sha256sum | cut -c1-64)" "$(printf x | sha256sum | cut -c1-64)" > corpus/manifest/seed-2

# qr_frames: frame sequences of a root (0x00 between codes), a plain code
python3 - "$v/repo/root" <<'PY'
import hashlib, sys
data = open(sys.argv[1], "rb").read()
d = hashlib.sha256(data).hexdigest()
chunks = [data[i:i + 300] for i in range(0, len(data), 300)]
fr = [b"ARCA1 %d/%d %s " % (i + 1, len(chunks), d.encode()) + c for i, c in enumerate(chunks)]
open("corpus/qr_frames/root-in-order", "wb").write(b"\0".join(fr))
open("corpus/qr_frames/root-reversed", "wb").write(b"\0".join(reversed(fr)))
open("corpus/qr_frames/root-missing-one", "wb").write(b"\0".join(fr[1:]))
open("corpus/qr_frames/plain", "wb").write(b"sha256=" + d.encode())
PY

# patch: the conex-made incremental update, and the patches the incremental
# tests write
cp $v/variants/incremental-update.patch corpus/patch/
find $root/tests -name '*.patch' | while read -r f; do
  cp "$f" "corpus/patch/$(echo "$f" | sha256sum | cut -c1-12)"
done

# bundle: a bundle as a create-root rehearsal writes it (seeds/bundle/,
# made with `arca ceremony run --rehearse --yes` and `arca bundle pack`)
cp seeds/bundle/* corpus/bundle/

# sign_request: sign requests and signature files as arca writes them
# (seeds/sign_request/, made with `arca sign-request export` and `sign`
# from the vectors' root at stages/root.5 and repo/root, with their keys)
cp seeds/sign_request/* corpus/sign_request/

echo "seeded: $(for t in corpus/*; do printf '%s=%s ' "${t#corpus/}" "$(ls "$t" | wc -l)"; done)"
