"""Home Assistant's timers in their rooms: kept per satellite, rung when they finish."""
