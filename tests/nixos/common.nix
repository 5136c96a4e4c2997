# Shared by the VM tests: a 2x2 red PNG and the classify request body that carries it.
{
  png = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==";

  classifyBody = png: builtins.toJSON {
    image = png;
    labels = [
      "cat"
      "dog"
      "car"
    ];
    top_k = 3;
  };
}
