"""Fine-tuning evaluation: readers for the LinkBERT repo's data formats, the authors' metrics, the four task
families (sequence classification, extractive QA, multiple choice, NER), presets, and the BLURB / MRQA suites."""
