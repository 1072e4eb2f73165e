"""Environmental control: room loops, interlocks and manual overrides (pure), and the runtime that drives them."""
