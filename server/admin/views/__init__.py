"""One module per admin area; each owns a blueprint made by server.admin.pages."""
