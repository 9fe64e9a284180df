"""Streamlit dashboards: the live map and series, AQI, water classes, soil risk, alerts, data
completeness, carbon emissions and the one map. They only read (through store/)."""
