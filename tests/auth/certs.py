"""A throwaway certificate authority for mTLS tests (it lives in devsupport: dev clusters use it too)."""

from devsupport.certs import CertificateAuthority, Issued

__all__ = ["CertificateAuthority", "Issued"]
