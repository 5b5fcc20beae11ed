#!/usr/bin/env python3
"""One unauthenticated SSH login attempt with a fresh key the cluster does not know.

Usage: paramiko_unknown_key.py HOST PORT USERNAME
Prints "refused" when the server refuses the key, "accepted" otherwise (exit 1).
"""
import sys

import paramiko


def main():
    host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    key = paramiko.ECDSAKey.generate(bits=256)
    transport = paramiko.Transport((host, port))
    try:
        transport.start_client(timeout=20)
        try:
            transport.auth_publickey(user, key)
        except paramiko.AuthenticationException:
            print("refused")
            return 0
        print("accepted")
        return 1
    finally:
        transport.close()


if __name__ == "__main__":
    sys.exit(main())
