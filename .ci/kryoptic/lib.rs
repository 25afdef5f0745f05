//! Nothing: this package only brings kryoptic and the OpenSSL sources.
