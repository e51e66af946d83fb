#!/usr/bin/env python3
"""Mint the load test's HS256 JWT: mint-jwt.py SECRET SUBJECT GROUP [TTL_SECONDS]."""
import base64, hashlib, hmac, json, sys, time

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

secret, subject, group = sys.argv[1], sys.argv[2], sys.argv[3]
ttl = int(sys.argv[4]) if len(sys.argv) > 4 else 3600
now = int(time.time())
claims = {"iss": "https://idp.load-test.invalid", "aud": "mcp-gateway-load-test", "sub": subject,
          "groups": [group], "iat": now, "exp": now + ttl}
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps(claims).encode())
sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
