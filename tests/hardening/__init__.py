"""Hardening suite: hostile input, fuzzing, abuse limits, crashes, faults, audit and log hygiene."""
