"""Vision Transformer (book §11.8) on Fashion-MNIST resized to 96x96.

    d2ljax train vit            # book setting (GPU/TPU)
    d2ljax train vit:cpu        # 28x28, 4x4 patches, width 64, the book's 10 epochs (CPU)

Book settings (§11.8.4): resize 96, patch 16 (36 patches + <cls>), num_hiddens 512,
mlp_num_hiddens 2048, 8 heads, 2 blocks, emb/blk dropout 0.1, SGD lr 0.1, batch 128, 10 epochs;
6,457,866 parameters. The book notes the ViT does not beat the ResNet on a data set this small.

CPU setting: native 28x28 images, patch 4 (49 patches + <cls>), num_hiddens 64,
mlp_num_hiddens 128, 4 heads, 2 blocks, same dropout, optimizer, lr, batch and 10 epochs; 71,562
parameters. Measured
results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        dataset="fashion_mnist",
        batch_size=128,
        model="vit",
        model_kwargs=dict(
            img_size=96,
            patch_size=16,
            num_hiddens=512,
            mlp_num_hiddens=2048,
            num_heads=8,
            num_blks=2,
            emb_dropout=0.1,
            blk_dropout=0.1,
        ),
        resize=96,
        lr=0.1,
        epochs=10,
        cpu={
            "data.resize": None,
            "model.kwargs": dict(
                img_size=28,
                patch_size=4,
                num_hiddens=64,
                mlp_num_hiddens=128,
                num_heads=4,
                num_blks=2,
                emb_dropout=0.1,
                blk_dropout=0.1,
            ),
        },
        smoke_limit=512,
        variant=variant,
    )
