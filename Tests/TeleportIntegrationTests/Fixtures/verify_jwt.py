# Verifies a teleport-jwt-assertion with PyJWT against the proxy's published JWKS.
# usage: verify_jwt.py JWKS_FILE TOKEN AUDIENCE ISSUER; prints the claims as JSON.
import json
import sys

import jwt

jwks = json.load(open(sys.argv[1]))
token, audience, issuer = sys.argv[2], sys.argv[3], sys.argv[4]
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwks["keys"] if k["kid"] == kid)
public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(key))
claims = jwt.decode(token, public, algorithms=["ES256"], audience=audience, issuer=issuer)
print(json.dumps(claims))
