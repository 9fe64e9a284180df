"""Streamlit dashboards: the live map, latest values and time series of EcoSense."""
