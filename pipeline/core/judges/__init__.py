"""The judges of a digit's class: the CNN, the pixel k-NN, their disagreements, blur."""
