"""Reading Wyoming events safely from untrusted peers."""
