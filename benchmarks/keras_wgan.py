"""The seed's WGAN as a Keras user writes it (Keras 3, any backend; set KERAS_BACKEND).

Written from REFERENCE.md section 1's description of Keras-GAN wgan.py's loop: compiled critic
and combined models, `train_on_batch` on the real batch then on the fake batch, the critic's
layer weights clipped through get_weights/set_weights, then `combined.train_on_batch` with the
critic frozen. Data drawn on the host with NumPy, as the seed does.

A speed baseline, not a numerical twin of the seed: Keras 3's RMSprop puts epsilon inside the
square root (`lr * g / sqrt(v + eps)`), where the seed's Keras 2 put it outside
(`lr * g / (sqrt(v) + eps)`), and for a clipped critic's tiny gradients that placement decides
how far each update moves (REFERENCE.md section 1). Numerical parity with the seed is
`--preset keras-exact`.
"""

from __future__ import annotations

import time

import numpy as np


def build(keras, clip: float = 0.01):
    layers = keras.layers
    generator = keras.Sequential([
        keras.Input((100,)), layers.Dense(128 * 7 * 7, activation="relu"), layers.Reshape((7, 7, 128)),
        layers.UpSampling2D(), layers.Conv2D(128, 4, padding="same"),
        layers.BatchNormalization(momentum=0.8), layers.Activation("relu"),
        layers.UpSampling2D(), layers.Conv2D(64, 4, padding="same"),
        layers.BatchNormalization(momentum=0.8), layers.Activation("relu"),
        layers.Conv2D(1, 4, padding="same"), layers.Activation("tanh")])
    critic = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(16, 3, strides=2, padding="same"), layers.LeakyReLU(0.2), layers.Dropout(0.25),
        layers.Conv2D(32, 3, strides=2, padding="same"), layers.ZeroPadding2D(((0, 1), (0, 1))),
        layers.BatchNormalization(momentum=0.8), layers.LeakyReLU(0.2), layers.Dropout(0.25),
        layers.Conv2D(64, 3, strides=2, padding="same"), layers.BatchNormalization(momentum=0.8),
        layers.LeakyReLU(0.2), layers.Dropout(0.25),
        layers.Conv2D(128, 3, strides=1, padding="same"), layers.BatchNormalization(momentum=0.8),
        layers.LeakyReLU(0.2), layers.Dropout(0.25), layers.Flatten(), layers.Dense(1)])

    def wasserstein(y_true, y_pred):
        return keras.ops.mean(y_true * y_pred)

    critic.compile(loss=wasserstein, optimizer=keras.optimizers.RMSprop(5e-5))
    critic.trainable = False
    z = keras.Input((100,))
    combined = keras.Model(z, critic(generator(z)))
    combined.compile(loss=wasserstein, optimizer=keras.optimizers.RMSprop(5e-5))
    return generator, critic, combined


def benchmark(images: np.ndarray, batch_size: int, iterations: int, warmup: int = 5,
              clip: float = 0.01) -> dict:
    import keras

    generator, critic, combined = build(keras, clip)
    x_train = (images.astype(np.float32) - 127.5) / 127.5
    valid, fake = -np.ones((batch_size, 1), np.float32), np.ones((batch_size, 1), np.float32)

    def iteration():
        for _ in range(5):
            imgs = x_train[np.random.randint(0, x_train.shape[0], batch_size)]
            noise = np.random.normal(0, 1, (batch_size, 100)).astype(np.float32)
            gen_imgs = generator.predict(noise, verbose=0)
            critic.train_on_batch(imgs, valid)
            critic.train_on_batch(gen_imgs, fake)
            for layer in critic.layers:
                layer.set_weights([np.clip(w, -clip, clip) for w in layer.get_weights()])
        return combined.train_on_batch(noise, valid)

    start = time.perf_counter()
    for _ in range(warmup):
        iteration()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        loss = iteration()
    float(np.asarray(loss).ravel()[0])  # train_on_batch returns host values: already synced
    seconds = time.perf_counter() - start
    return {"impl": f"keras-{keras.backend.backend()}", "batch": batch_size,
            "ms_per_iter": 1000 * seconds / iterations, "compile_s": warm,
            "version": keras.__version__}
