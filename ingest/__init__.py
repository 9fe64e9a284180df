"""Ingest: turns device bytes into canonical observations and stores them durably."""
