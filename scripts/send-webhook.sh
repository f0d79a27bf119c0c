#!/usr/bin/env bash
# Sends a JSON file to a running hub, signed the way the platform signs it.
#   scripts/send-webhook.sh shopify|woocommerce CONNECTION_ID SECRET TOPIC FILE [HUB_URL]
# Example:
#   scripts/send-webhook.sh shopify con_... my-secret customers/create examples/shopify-customer.json
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,5p' "$0"
  exit 2
fi
platform=$1 connection=$2 secret=$3 topic=$4 file=$5 hub=${6:-http://127.0.0.1:8080}
signature=$(openssl dgst -sha256 -hmac "$secret" -binary < "$file" | openssl base64 -A)
case "$platform" in
  shopify)
    headers=(-H "X-Shopify-Topic: $topic" -H "X-Shopify-Hmac-Sha256: $signature"
             -H "X-Shopify-Event-Id: $(date +%s%N)" -H "X-Shopify-Shop-Domain: example.myshopify.com") ;;
  woocommerce)
    headers=(-H "X-WC-Webhook-Topic: $topic" -H "X-WC-Webhook-Signature: $signature"
             -H "X-WC-Webhook-Resource: ${topic%%.*}" -H "X-WC-Webhook-Event: ${topic#*.}") ;;
  *) echo "platform must be shopify or woocommerce" >&2; exit 2 ;;
esac
curl -sS -X POST "$hub/webhooks/$platform/$connection" -H "Content-Type: application/json" \
  "${headers[@]}" --data-binary "@$file"
echo
