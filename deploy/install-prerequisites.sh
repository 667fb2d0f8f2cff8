#!/usr/bin/env bash
# Installs what docmill's demo and tests need from the system, when it is missing:
# Java 17+ and Maven (the local Kafka broker), Python 3.11+ with venv, Tesseract's English
# data (the local backend's OCR; the engine itself comes with the tesserocr wheel), the fonts
# the tests render scans with, and Prometheus (the tests evaluate the shipped dashboard and
# alert rules with a real one).
# Debian/Ubuntu, as root (or with sudo); prints what to install anywhere else.
set -euo pipefail
want_prometheus=${1:-with-prometheus}

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || missing+=(python3 python3-venv)
tessdata_found=no
for dir in /usr/share/tesseract-ocr/*/tessdata /usr/share/tessdata /usr/local/share/tessdata; do
  [ -f "$dir/eng.traineddata" ] && tessdata_found=yes
done
[ "$tessdata_found" = yes ] || missing+=(tesseract-ocr tesseract-ocr-eng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -d /usr/share/fonts/truetype/liberation2 ] || missing+=(fonts-liberation2)
if [ "$want_prometheus" = with-prometheus ]; then
  command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "install-prerequisites: please install: ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-prerequisites: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
