"""Why each primary metric answers the words it tests: one reason per reading, shared by the clauses
that read the write-up's words the same way (declarations.py)."""

FIDELITY_WHY = (
    "realism is fidelity, how near samples lie to real digits: density (Naeem et al. 2020, k = 5) counts "
    "the real neighbourhoods around each sample and, unlike precision, is not lifted to 1 by real outliers; "
    "FID mixes fidelity with diversity"
)
DIVERSE_WHY = (
    "diversity among samples that are compared: coverage (Naeem et al. 2020, k = 5), the share of real "
    "neighbourhoods some sample reaches, robust to outliers where recall is not"
)
MOST_DIGITS_WHY = (
    "the write-up judged 'most digits' and 'diverse' by the digits it saw: the 8th most frequent digit's "
    "share above half a uniform share (1/20) means at least 8 of the 10 digits come up, the rule that "
    "counts a class as covered, as a continuous number a t test can weigh"
)
NOISE_WHY = (
    "the write-up defines noisy as 'some of the generated images do not correspond to any of the actual "
    "digits': the share of samples the evaluation classifier (99 % accurate on real digits) reads as one "
    "digit with 90 % of its probability"
)
BLUR_WHY = "blurry and sharper are about edges: the variance of the Laplacian, the standard sharpness measure"
UNCLEAR_WHY = "unclear is whether a digit can be read: the evaluation classifier's mean top-class probability"
LEAD_WHY = (
    "'3 was being generated more often compared to the others' is a lead: digit 3's share minus the "
    "largest other digit's, above 0 by both judges (an intersection-union test)"
)
SAME_LOSS_WHY = f"{FIDELITY_WHY}; 'the same' is an equivalence, tested with two one-sided tests"
DISTRIBUTION_WHY = (
    "the claim is about the whole sample distribution, and FID (LeNet features) is the distance the search minimised"
)
SHAPE_WHY = f"{DISTRIBUTION_WHY}; 'a temperature, not a shape' is an equivalence, tested with two one-sided tests"
